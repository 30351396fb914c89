DROP TABLE deleted_keys;

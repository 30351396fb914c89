DROP TABLE key_roles;
DROP TABLE roles;

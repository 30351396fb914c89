-- Tenants are identified by id everywhere; a unique name only told sign-up visitors which
-- company names were taken. Two tenants may now share a name.
ALTER TABLE tenants DROP CONSTRAINT tenants_name_key;

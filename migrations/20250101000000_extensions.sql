-- Extensions the schema needs: gen_random_uuid() and digest() for the audit hash chain.
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;

--
-- PostgreSQL database cluster dump
--

\restrict OljMQgkAu6MkelIdcNG0makcBfslgW8hNj082zyKMdgf9j7nhCC5V1DlijkbREb

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE app;
ALTER ROLE app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD 'SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$c3RvcmVkLWtleQ==:c2VydmVyLWtleQ==' VALID UNTIL '2030-01-01 00:00:00+00';
COMMENT ON ROLE app IS 'the app''s role';
CREATE ROLE grp;
ALTER ROLE grp WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE nightjar;
ALTER ROLE nightjar WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$c3RvcmVkLWtleQ==:c2VydmVyLWtleQ==';
CREATE ROLE nopw;
ALTER ROLE nopw WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE "we ird""q";
ALTER ROLE "we ird""q" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;

--
-- User Configurations
--

--
-- User Config "app"
--

ALTER ROLE app SET search_path TO 'a, b';
ALTER ROLE app SET log_statement TO 'all';

--
-- User Config "grp"
--

ALTER ROLE grp SET statement_timeout TO '5';


--
-- Role memberships
--

GRANT grp TO app WITH ADMIN OPTION GRANTED BY nightjar;
GRANT grp TO "we ird""q" GRANTED BY nightjar;


--
-- Role privileges on configuration parameters
--

GRANT ALL ON PARAMETER work_mem TO app;


--
-- Tablespaces
--

CREATE TABLESPACE ts1 OWNER nightjar LOCATION '/tmp/ro-ts';
ALTER TABLESPACE ts1 SET (random_page_cost=2);
GRANT ALL ON TABLESPACE ts1 TO app;
COMMENT ON TABLESPACE ts1 IS 'x';


\unrestrict OljMQgkAu6MkelIdcNG0makcBfslgW8hNj082zyKMdgf9j7nhCC5V1DlijkbREb

--
-- PostgreSQL database cluster dump complete
--


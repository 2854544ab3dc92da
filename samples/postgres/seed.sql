-- Sample data for the nightjar demo and the PostgreSQL round-trip test: one of each kind of object that a
-- restore has to bring back (text, numeric, jsonb, bytea, arrays, a sequence, a view, a function, an index,
-- a partitioned table, a large object, a trigger, a materialized view, comments and a grant).
CREATE SCHEMA shop;

CREATE SEQUENCE shop.order_no START 1000;

CREATE TABLE shop.customers (
    id       bigserial PRIMARY KEY,
    name     text NOT NULL,
    balance  numeric(12, 2) NOT NULL DEFAULT 0,
    profile  jsonb,
    avatar   bytea,
    tags     text[],
    scores   integer[]
);
CREATE INDEX customers_name_idx ON shop.customers (lower(name));

INSERT INTO shop.customers (name, balance, profile, avatar, tags, scores)
SELECT 'customer ' || g || CASE WHEN g % 7 = 0 THEN ' «ünïcødé»' ELSE '' END,
       round((g * 13.37)::numeric % 10000, 2),
       jsonb_build_object('tier', g % 3, 'since', 2000 + g % 24, 'nested', jsonb_build_array(g, g * 2)),
       decode(md5(g::text), 'hex'),
       ARRAY['t' || (g % 5), 'group-' || (g % 11)],
       ARRAY[g % 10, g % 100, g]
FROM generate_series(1, 500) AS g;

CREATE TABLE shop.orders (
    order_no   bigint NOT NULL DEFAULT nextval('shop.order_no'),
    customer   bigint NOT NULL REFERENCES shop.customers (id),
    placed_on  date NOT NULL,
    amount     numeric(10, 2) NOT NULL
) PARTITION BY RANGE (placed_on);
CREATE TABLE shop.orders_2023 PARTITION OF shop.orders FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE shop.orders_2024 PARTITION OF shop.orders FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

INSERT INTO shop.orders (customer, placed_on, amount)
SELECT 1 + g % 500, date '2023-01-01' + (g % 700), (g % 997) / 3.0
FROM generate_series(1, 1200) AS g;

CREATE FUNCTION shop.customer_total(c bigint) RETURNS numeric
    LANGUAGE sql STABLE AS $$ SELECT coalesce(sum(amount), 0) FROM shop.orders WHERE customer = c $$;

CREATE VIEW shop.big_spenders AS
    SELECT id, name, shop.customer_total(id) AS total FROM shop.customers WHERE shop.customer_total(id) > 300;

CREATE TABLE shop.empty_table (id int);

CREATE TABLE shop.documents (id int PRIMARY KEY, body oid);
INSERT INTO shop.documents VALUES (1, lo_from_bytea(0, convert_to(repeat('large object payload ', 2000), 'UTF8')));

-- What pg_restore brings back after the data (post-data): a check constraint added later, a trigger, a
-- materialized view refreshed at the end; and what rides along with its object: comments and a grant.
ALTER TABLE shop.customers ADD CONSTRAINT balance_not_negative CHECK (balance >= 0) NOT VALID;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON shop.customers FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE MATERIALIZED VIEW shop.order_totals AS
    SELECT customer, count(*) AS orders, sum(amount) AS total FROM shop.orders GROUP BY customer;
COMMENT ON TABLE shop.customers IS 'one row per customer';
COMMENT ON COLUMN shop.customers.tags IS 'free-form labels';
COMMENT ON INDEX shop.customers_name_idx IS 'case-insensitive name lookups';
GRANT SELECT ON shop.big_spenders TO PUBLIC;

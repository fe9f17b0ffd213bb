-- Bench shape (c): 320 tables of mixed sizes (a few large, most small) with foreign keys between
-- them, about 2 GB. :scale (psql -v scale=N, default 1) multiplies every table's rows.
\set ON_ERROR_STOP on
CREATE SCHEMA IF NOT EXISTS shape;
-- Table k gets rows that fall off geometrically with k: t001 250 000 rows, t320 200; about 10 million in all.
SELECT format($$CREATE TABLE shape.t%1$s (
        id bigint PRIMARY KEY,
        parent_id bigint %2$s,
        name text NOT NULL,
        amount numeric(12, 2) NOT NULL,
        created_at timestamptz NOT NULL,
        note text)$$,
    lpad(k::text, 3, '0'),
    CASE WHEN k > 1 THEN format('REFERENCES shape.t%s (id)', lpad((k / 2)::text, 3, '0')) ELSE '' END)
FROM generate_series(1, 320) k
\gexec
SELECT format($$INSERT INTO shape.t%1$s SELECT i, %2$s, 'name ' || i || ' ' || md5(i::text), (i %% 100000) / 100.0,
        timestamptz '2026-01-01' + i * interval '1 minute', CASE WHEN i %% 3 = 0 THEN repeat(md5(i::text), 2) END
    FROM generate_series(1::bigint, %3$s) i$$,
    lpad(k::text, 3, '0'),
    CASE WHEN k > 1 THEN format('1 + i %% %s', greatest(200, (250000 * :scale / power(1.025, k / 2 - 1))::bigint)) ELSE 'NULL' END,
    greatest(200, (250000 * :scale / power(1.025, k - 1))::bigint))
FROM generate_series(1, 320) k
\gexec
SELECT format('CREATE INDEX t%1$s_parent ON shape.t%1$s (parent_id)', lpad(k::text, 3, '0')) FROM generate_series(2, 320) k
\gexec
SELECT format('CREATE INDEX t%1$s_created ON shape.t%1$s (created_at)', lpad(k::text, 3, '0')) FROM generate_series(1, 320, 4) k
\gexec
ANALYZE;

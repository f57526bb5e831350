-- What GIN's pending list (fastupdate) costs the searches and the writes of the two text
-- indexes, the directory's trigram index and the articles' full-text index, on scratch tables
-- shaped like them (BENCHMARKS.md, *A search index without a pending list*). Run it twice,
-- with the list on and off, in a scratch database:
--
--   . .local/env
--   psql "$DATABASE_ADMIN_URL" -c 'CREATE DATABASE gin_pending_list'
--   for fu in on off; do
--     psql -X -q "${DATABASE_URL%/*}/gin_pending_list" -v fu=$fu -f bench/sql/gin-pending-list.sql
--   done
--
-- Each part seeds rows and vacuums them, then writes more rows the way a burst of sign-ups or
-- saves would (in batches, then one at a time) without a vacuum after them, and times searches
-- that read what is left in the list.
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS pgstattuple;
\echo '== fastupdate =' :fu

-- The directory: users.users_search_idx's expression over names and addresses.
DROP TABLE IF EXISTS bench_gin_users;
CREATE TABLE bench_gin_users (
    id uuid PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL, email text,
    status text NOT NULL);
CREATE INDEX bench_gin_users_search_idx ON bench_gin_users
    USING gin ((lower(first_name || ' ' || last_name || ' ' || coalesce(email, ''))) gin_trgm_ops)
    WITH (fastupdate = :fu);
CREATE INDEX bench_gin_users_name_idx ON bench_gin_users
    (status, lower(last_name), lower(first_name), id);
-- The names `seed` gives the bench directory.
PREPARE add_users(bigint, bigint) AS INSERT INTO bench_gin_users
  SELECT gen_random_uuid(),
    (ARRAY['Ada','Alan','Barbara','Claude','Donald','Edsger','Frances','Grace','Hedy','Ivan',
           'John','Ken','Leslie','Margaret','Niklaus','Ole','Peter','Radia','Shafi','Tim',
           'Ursula','Vint','Whitfield','Xavier','Yukihiro','Zhores'])[(1 + (i * 7919) % 26)::int],
    (ARRAY['Lovelace','Turing','Liskov','Shannon','Knuth','Dijkstra','Allen','Hopper','Lamarr',
           'Sutherland','McCarthy','Thompson','Lamport','Hamilton','Wirth','Dahl','Naur',
           'Perlman','Goldwasser','Berners-Lee','Franklin','Cerf','Diffie','Leroy','Matsumoto',
           'Alferov','Backus','Cocke','Hoare','Kay','Milner','Ritchie','Stroustrup','Tarjan',
           'Valiant','Yao','Hellman','Rivest','Shamir','Adleman'])[(1 + (i * 104729) % 40)::int],
    'seed-' || i || '@bench.lectern', 'ACTIVE'
  FROM generate_series($1, $2) i;
EXECUTE add_users(1, 1064);
VACUUM ANALYZE bench_gin_users;
SELECT clock_timestamp() AS t0 \gset
EXECUTE add_users(1065, 6064);
EXECUTE add_users(6065, 10064);
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1)
    AS users_9000_in_two_batches_ms;
SELECT clock_timestamp() AS t0 \gset
DO $$ BEGIN FOR i IN 10065..10264 LOOP EXECUTE format('EXECUTE add_users(%s, %s)', i, i); END LOOP; END $$;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 / 200, 3)
    AS user_one_at_a_time_ms;
ANALYZE bench_gin_users;
SELECT pending_pages, pending_tuples FROM pgstatginindex('bench_gin_users_search_idx');
SELECT clock_timestamp() AS t0 \gset
DO $$ BEGIN FOR i IN 1..50 LOOP
  PERFORM id FROM bench_gin_users
  WHERE lower(first_name || ' ' || last_name || ' ' || coalesce(email, '')) LIKE '%seed-777@%'
  LIMIT 21;
END LOOP; END $$;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 / 50, 3)
    AS users_search_one_ms;
SELECT clock_timestamp() AS t0 \gset
DO $$ BEGIN FOR i IN 1..50 LOOP
  PERFORM id FROM (
    SELECT id FROM bench_gin_users
    WHERE lower(first_name || ' ' || last_name || ' ' || coalesce(email, '')) LIKE '%lamport%'
    ORDER BY status, lower(last_name), lower(first_name), id LIMIT 21) page;
END LOOP; END $$;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 / 50, 3)
    AS users_search_common_ms;
DROP TABLE bench_gin_users;

-- The articles: content.articles_search_idx over a tsvector of about 300 words an article
-- (out of 27 000 made-up words and one common word); every 1 000th says the rare word.
DROP TABLE IF EXISTS bench_gin_articles;
CREATE TABLE bench_gin_articles (
    id bigint PRIMARY KEY, published_at timestamptz NOT NULL, search tsvector NOT NULL);
CREATE INDEX bench_gin_articles_search_idx ON bench_gin_articles USING gin (search)
    WITH (fastupdate = :fu);
CREATE INDEX bench_gin_articles_published_idx ON bench_gin_articles (published_at DESC, id DESC);
PREPARE add_articles(bigint, bigint) AS INSERT INTO bench_gin_articles
  SELECT i, now() - make_interval(secs => i), to_tsvector('english',
    (SELECT string_agg(CASE WHEN k % 6 = 0 THEN 'database'
                            ELSE 'w' || ((i * 7919 + k * 104729) % 27000) END, ' ')
     FROM generate_series(1, 300) k)
    || CASE WHEN i % 1000 = 500 THEN ' quetzal' ELSE '' END)
  FROM generate_series($1, $2) i;
EXECUTE add_articles(1, 1000);
VACUUM ANALYZE bench_gin_articles;
SELECT clock_timestamp() AS t0 \gset
EXECUTE add_articles(1001, 1500); EXECUTE add_articles(1501, 2000);
EXECUTE add_articles(2001, 2500); EXECUTE add_articles(2501, 3000);
EXECUTE add_articles(3001, 3500); EXECUTE add_articles(3501, 4000);
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1)
    AS articles_3000_in_batches_of_500_ms;
SELECT clock_timestamp() AS t0 \gset
DO $$ BEGIN FOR i IN 4001..4100 LOOP EXECUTE format('EXECUTE add_articles(%s, %s)', i, i); END LOOP; END $$;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 / 100, 3)
    AS article_one_at_a_time_ms;
ANALYZE bench_gin_articles;
SELECT pending_pages, pending_tuples FROM pgstatginindex('bench_gin_articles_search_idx');
SELECT clock_timestamp() AS t0 \gset
DO $$ BEGIN FOR i IN 1..50 LOOP
  PERFORM id FROM bench_gin_articles WHERE search @@ websearch_to_tsquery('english', 'quetzal')
  LIMIT 21;
END LOOP; END $$;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 / 50, 3)
    AS articles_search_rare_ms;
SELECT clock_timestamp() AS t0 \gset
DO $$ BEGIN FOR i IN 1..50 LOOP
  PERFORM id FROM (
    SELECT id FROM bench_gin_articles WHERE search @@ websearch_to_tsquery('english', 'w77')
    ORDER BY published_at DESC, id DESC LIMIT 200) page;
END LOOP; END $$;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 / 50, 3)
    AS articles_search_some_ms;
DROP TABLE bench_gin_articles;

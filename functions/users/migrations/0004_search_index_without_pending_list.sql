-- The directory's trigram index takes each new or renamed user into the index itself, not into
-- GIN's pending list. With the list on, a burst of sign-ups or an import waits there (up to
-- gin_pending_list_limit, 4 MB: about 9 000 users) until a vacuum merges it, and every `?q=`
-- search reads the whole list: at 10 064 users, 6 ms for a one-user search instead of 0.8
-- (BENCHMARKS.md). Users are written far less often than they are searched.
ALTER INDEX users.users_search_idx SET (fastupdate = off);

-- What already waits in the list is merged now; with the option off nothing joins it again.
SELECT gin_clean_pending_list('users.users_search_idx'::regclass);

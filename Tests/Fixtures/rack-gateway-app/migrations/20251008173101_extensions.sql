-- The application's first migration. This fixture's schema needs nothing beyond plpgsql (core
-- sha256() stands in for the application's HMAC computed in Go), so it only states the search path.
SET LOCAL search_path = public;

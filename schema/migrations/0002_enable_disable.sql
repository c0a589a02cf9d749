-- Ripple: turning notifications on and off per table.
--
--   SELECT ripple.enable('projects');          -- install (or refresh) the trigger
--   SELECT ripple.enable('billing.invoices');  -- any schema
--   SELECT ripple.enable('"Odd Name"');        -- quoted like any SQL identifier
--   SELECT ripple.disable('projects');         -- remove it
--   SELECT channel FROM ripple.enabled_tables; -- what the gateway listens on
--
-- Both functions are idempotent. They need PostgreSQL 14 or later
-- (CREATE OR REPLACE TRIGGER).

-- channel returns the notification channel of a table: its name, qualified
-- with its schema when the schema is not public. It matches the channel that
-- ripple.notify_row_change computes from TG_TABLE_SCHEMA and TG_TABLE_NAME.
CREATE OR REPLACE FUNCTION ripple.channel(tbl regclass)
RETURNS text
LANGUAGE sql
STABLE
AS $$
  SELECT CASE
    WHEN n.nspname = 'public' THEN c.relname::text
    ELSE n.nspname || '.' || c.relname
  END
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  WHERE c.oid = tbl
$$;

COMMENT ON FUNCTION ripple.channel(regclass) IS
  'Ripple: the notification channel of a table ("table", or "schema.table" outside public).';

-- enable installs the trigger "ripple_notify" on a table: AFTER INSERT OR
-- UPDATE OR DELETE, FOR EACH ROW, calling ripple.notify_row_change with the
-- primary-key column names as arguments. Running it again replaces the
-- trigger, which also picks up a changed primary key.
CREATE OR REPLACE FUNCTION ripple.enable(tbl regclass)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  rel     record;
  pk_cols text[];
  channel text;
BEGIN
  SELECT c.relkind, c.relname, n.nspname
    INTO rel
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
   WHERE c.oid = tbl;

  IF rel.relkind = 'p' THEN
    -- A row trigger on a partitioned table fires with the partition's name,
    -- so its changes would arrive on one channel per partition.
    RAISE EXCEPTION 'table % is partitioned; enable its partitions instead', tbl
      USING ERRCODE = 'wrong_object_type';
  ELSIF rel.relkind <> 'r' THEN
    RAISE EXCEPTION '% is not a table', tbl
      USING ERRCODE = 'wrong_object_type';
  END IF;

  -- The primary-key columns in key order.
  SELECT array_agg(a.attname::text ORDER BY k.ord)
    INTO pk_cols
    FROM pg_catalog.pg_index AS i
   CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_catalog.pg_attribute AS a
      ON a.attrelid = i.indrelid AND a.attnum = k.attnum
   WHERE i.indrelid = tbl AND i.indisprimary;

  IF pk_cols IS NULL THEN
    RAISE EXCEPTION 'table % has no primary key', tbl
      USING ERRCODE = 'invalid_table_definition',
            HINT = 'Ripple identifies rows by their primary key; add one with ALTER TABLE ... ADD PRIMARY KEY.';
  END IF;

  channel := ripple.channel(tbl);
  IF octet_length(channel) > 63 THEN
    RAISE EXCEPTION 'table %: channel name "%" is longer than 63 bytes', tbl, channel
      USING ERRCODE = 'name_too_long',
            HINT = 'pg_notify channel names are limited to 63 bytes; use a shorter table or schema name.';
  END IF;

  -- Every name is quoted: %I for identifiers, %L for the trigger arguments.
  EXECUTE format(
    'CREATE OR REPLACE TRIGGER ripple_notify'
    ' AFTER INSERT OR UPDATE OR DELETE ON %I.%I'
    ' FOR EACH ROW EXECUTE FUNCTION ripple.notify_row_change(%s)',
    rel.nspname, rel.relname,
    (SELECT string_agg(format('%L', col), ', ') FROM unnest(pk_cols) AS col)
  );
END;
$$;

COMMENT ON FUNCTION ripple.enable(regclass) IS
  'Ripple: install (or refresh) the ripple_notify trigger on a table with a primary key. Idempotent.';

-- disable removes the trigger that ripple.enable installed, if any.
CREATE OR REPLACE FUNCTION ripple.disable(tbl regclass)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  rel record;
BEGIN
  SELECT c.relname, n.nspname
    INTO rel
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
   WHERE c.oid = tbl;

  -- Checked first so that disabling twice is silent (DROP TRIGGER IF EXISTS
  -- would send a notice).
  IF EXISTS (
    SELECT FROM pg_catalog.pg_trigger
     WHERE tgrelid = tbl AND tgname = 'ripple_notify'
  ) THEN
    EXECUTE format('DROP TRIGGER ripple_notify ON %I.%I', rel.nspname, rel.relname);
  END IF;
END;
$$;

COMMENT ON FUNCTION ripple.disable(regclass) IS
  'Ripple: remove the ripple_notify trigger from a table. Idempotent.';

-- enabled_tables lists the tables whose changes Ripple sends: every table
-- with a trigger calling ripple.notify_row_change, whatever its name.
CREATE OR REPLACE VIEW ripple.enabled_tables AS
SELECT DISTINCT
       ripple.channel(t.tgrelid) AS channel,
       t.tgrelid::regclass       AS table_name
  FROM pg_catalog.pg_trigger AS t
 WHERE t.tgfoid = 'ripple.notify_row_change()'::regprocedure
   AND NOT t.tgisinternal;

COMMENT ON VIEW ripple.enabled_tables IS
  'Ripple: the tables with a notify trigger and the channel each one notifies on.';

-- Any role may list the enabled tables (the gateway may run as a role that
-- did not apply the schema) and call enable/disable, which still need the
-- right to create triggers on the table. pg_trigger shows the same facts.
GRANT USAGE ON SCHEMA ripple TO PUBLIC;
GRANT SELECT ON ripple.enabled_tables TO PUBLIC;

-- Ripple: the trigger function that turns every row change into a pg_notify.
--
-- Each row change on a table with the Ripple trigger (see ripple.enable in
-- 0002) sends one notification:
--
--   channel  the table name; "<schema>.<table>" when the table is not in public
--   payload  {"op":"INSERT","table":"projects","schema":"public","new":{...}}
--            {"op":"UPDATE","table":..,"schema":..,"new":{...},"old":{...}}
--            {"op":"DELETE","table":..,"schema":..,"old":{...}}
--
-- For UPDATE, "old" holds only the primary key and the previous values of the
-- columns that changed: small, and enough to tell that a row left a filter.
--
-- pg_notify raises an error for a payload of 8000 bytes or more, which would
-- abort the writer's transaction. Ripple never breaks a write: a payload that
-- is too large is replaced by
--
--   {"op":..,"table":..,"schema":..,"truncated":true,"key":{<primary key>}}
--
-- (an UPDATE also carries "old": {<previous primary key>}) and the gateway
-- reads the row back by its key. Should even that be too large (a huge
-- primary key), the keys are left out and the notification still goes.
--
-- The payload is compact JSON written with row_to_json and to_json, which
-- escape line breaks inside strings. A column of type json is copied as the
-- text it was stored with, so it may bring line breaks, but only as
-- whitespace between tokens (JSON forbids raw control characters inside
-- strings): those become spaces, and a payload is always one line.
--
-- Nothing here may raise an error, which would abort the write. So the row is
-- never parsed as JSON when that can fail: to_jsonb, json_each and -> decode
-- every string and reject a json value holding \u0000 (or, outside UTF8
-- databases, a \u escape the encoding cannot hold). Only the UPDATE "old"
-- needs json_each; it runs inside an exception block with a safe fallback.

CREATE SCHEMA IF NOT EXISTS ripple;

COMMENT ON SCHEMA ripple IS
  'Ripple: row-change notifications for realtime clients (https://github.com/ripple-rt/ripple)';

-- notify_row_change is an AFTER ... FOR EACH ROW trigger function. Its
-- trigger arguments (TG_ARGV) are the names of the table's primary-key
-- columns, in key order; ripple.enable passes them.
--
-- It runs with the privileges of whoever writes the row, who need not have
-- any right on schema ripple: so it calls nothing in that schema.
-- Changes made by TRUNCATE are not sent (it fires no row triggers).
CREATE OR REPLACE FUNCTION ripple.notify_row_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  -- pg_notify's limits (src/backend/commands/async.c): a channel name is at
  -- most NAMEDATALEN - 1 = 63 bytes; a payload must be under 8000 bytes.
  max_channel constant int := 63;
  max_payload constant int := 8000;

  channel  text;
  head     text; -- {"op":..,"table":..,"schema":..  (the object left open)
  new_row  json; -- NEW as JSON, for INSERT and UPDATE
  old_row  json; -- OLD as JSON, for UPDATE and DELETE
  old_diff text; -- UPDATE's "old": key and changed columns
  key_sql  text; -- selects the primary key of the row passed as $1, as JSON
  key_now  text; -- the primary key of NEW (OLD for DELETE)
  key_old  text; -- the primary key of OLD, for a truncated UPDATE
  payload  text;
BEGIN
  channel := CASE
    WHEN TG_TABLE_SCHEMA = 'public' THEN TG_TABLE_NAME
    ELSE TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME
  END;
  IF octet_length(channel) > max_channel THEN
    -- ripple.enable refuses such tables; this catches a later rename.
    RAISE WARNING 'ripple: channel name "%" is longer than % bytes; change not sent',
      channel, max_channel;
    RETURN NULL;
  END IF;

  head := '{"op":"' || TG_OP || '"'
       || ',"table":' || to_json(TG_TABLE_NAME::text)::text
       || ',"schema":' || to_json(TG_TABLE_SCHEMA::text)::text;

  IF TG_OP = 'INSERT' THEN
    new_row := row_to_json(NEW);
    payload := head || ',"new":' || new_row::text || '}';
  ELSIF TG_OP = 'UPDATE' THEN
    new_row := row_to_json(NEW);
    old_row := row_to_json(OLD);
    BEGIN
      -- "old": the primary key (always) and the previous value of every
      -- column whose value changed. OLD and NEW have the same columns in the
      -- same order, so ROWS FROM pairs them up. Values compare as JSON text:
      -- a SQL NULL is the text null, so a change to or from NULL is seen.
      SELECT '{' || string_agg(to_json(c.name)::text || ':' || c.old_value::text, ',') || '}'
        INTO old_diff
        FROM ROWS FROM (json_each(old_row), json_each(new_row))
             AS c(name, old_value, new_name, new_value)
       WHERE c.name = ANY (TG_ARGV)
          OR c.old_value::text IS DISTINCT FROM c.new_value::text;
    EXCEPTION WHEN untranslatable_character OR invalid_text_representation THEN
      -- json_each could not decode a json column's value: send the whole
      -- previous row, which holds the key and every changed column too.
      old_diff := old_row::text;
    END;
    payload := head || ',"new":' || new_row::text
                    || ',"old":' || coalesce(old_diff, '{}') || '}';
  ELSE
    old_row := row_to_json(OLD);
    payload := head || ',"old":' || old_row::text || '}';
  END IF;

  IF strpos(payload, E'\n') > 0 OR strpos(payload, E'\r') > 0 THEN
    -- Only whitespace inside a json column's value can hold these.
    payload := translate(payload, E'\n\r', '  ');
  END IF;

  IF octet_length(payload) >= max_payload THEN
    -- Too large: send the key of the row as it is now (NEW, or OLD for
    -- DELETE); for UPDATE also the key it had before, as "old", so that a
    -- changed primary key is still seen. The key is read from the row
    -- itself (key columns are never of type json, so row_to_json of them
    -- is plain), e.g. SELECT row_to_json(k) FROM (SELECT ($1)."id") AS k.
    IF TG_NARGS > 0 THEN
      key_sql := format(
        'SELECT row_to_json(k)::text FROM (SELECT %s) AS k',
        (SELECT string_agg(format('($1).%I', col), ', ') FROM unnest(TG_ARGV) AS col)
      );
      BEGIN
        IF TG_OP = 'DELETE' THEN
          EXECUTE key_sql INTO key_now USING OLD;
        ELSE
          EXECUTE key_sql INTO key_now USING NEW;
        END IF;
        IF TG_OP = 'UPDATE' THEN
          EXECUTE key_sql INTO key_old USING OLD;
        END IF;
      EXCEPTION WHEN undefined_column THEN
        -- A key column was renamed since ripple.enable ran (run it again):
        -- send the change without its key rather than fail the write.
        key_now := NULL;
        key_old := NULL;
      END;
    END IF;
    payload := head || ',"truncated":true'
            || coalesce(',"key":' || key_now, '')
            || coalesce(',"old":' || key_old, '')
            || '}';
    IF octet_length(payload) >= max_payload THEN
      payload := head || ',"truncated":true}';
    END IF;
  END IF;

  PERFORM pg_notify(channel, payload);
  RETURN NULL; -- the result of an AFTER trigger is ignored
END;
$$;

COMMENT ON FUNCTION ripple.notify_row_change() IS
  'Ripple trigger: pg_notify(<table>, {"op","table","schema","new"|"old"}) per row; '
  'payloads of 8000 bytes or more become {"truncated":true,"key":{...}}. '
  'Arguments: the primary-key column names. Install with ripple.enable(table).';

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
-- JSON is built with jsonb, whose text form never contains a raw newline
-- (control characters inside strings are escaped), so a payload is always one
-- line. Columns of type json are normalised the same way.

CREATE SCHEMA IF NOT EXISTS ripple;

COMMENT ON SCHEMA ripple IS
  'Ripple: row-change notifications for realtime clients (https://github.com/ripple-rt/ripple)';

-- notify_row_change is an AFTER ... FOR EACH ROW trigger function. Its
-- trigger arguments (TG_ARGV) are the names of the table's primary-key
-- columns, in key order; ripple.enable passes them.
--
-- It runs with the privileges of whoever writes the row, who need not have
-- any right on schema ripple: so it calls nothing in that schema.
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
  new_row  jsonb;
  old_row  jsonb;
  envelope jsonb; -- op, table, schema
  body     jsonb; -- new, old, truncated, key
  payload  text;
BEGIN
  channel := CASE
    WHEN TG_TABLE_SCHEMA = 'public' THEN TG_TABLE_NAME
    ELSE TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME
  END;
  IF octet_length(channel) > max_channel THEN
    -- ripple.enable refuses such tables; this catches a later rename.
    -- Warn rather than fail the writer's transaction.
    RAISE WARNING 'ripple: channel name "%" is longer than % bytes; change not sent',
      channel, max_channel;
    RETURN NULL;
  END IF;

  envelope := jsonb_build_object(
    'op', TG_OP,
    'table', TG_TABLE_NAME,
    'schema', TG_TABLE_SCHEMA
  );

  IF TG_OP = 'DELETE' THEN
    old_row := to_jsonb(OLD);
    body := jsonb_build_object('old', old_row);
  ELSIF TG_OP = 'UPDATE' THEN
    new_row := to_jsonb(NEW);
    old_row := to_jsonb(OLD);
    -- "old": the primary key (always) and the previous value of every
    -- column whose value changed. Both sides are jsonb, so SQL NULL columns
    -- compare as JSON null and a change to or from NULL is seen.
    body := jsonb_build_object(
      'new', new_row,
      'old', (SELECT coalesce(jsonb_object_agg(o.key, o.value), '{}'::jsonb)
                FROM jsonb_each(old_row) AS o
               WHERE o.key = ANY (TG_ARGV)
                  OR o.value IS DISTINCT FROM new_row -> o.key)
    );
  ELSE
    new_row := to_jsonb(NEW);
    body := jsonb_build_object('new', new_row);
  END IF;
  payload := (envelope || body)::text;

  IF octet_length(payload) >= max_payload THEN
    -- Too large: send the key of the row as it is now (NEW, or OLD for
    -- DELETE); for UPDATE also the key it had before, as "old", so that a
    -- changed primary key is still seen.
    SELECT jsonb_build_object(
             'truncated', true,
             'key', coalesce(jsonb_object_agg(k.col, coalesce(new_row, old_row) -> k.col), '{}'::jsonb)
           )
      INTO body
      FROM unnest(TG_ARGV) AS k(col);
    IF TG_OP = 'UPDATE' THEN
      body := body || (
        SELECT jsonb_build_object('old', coalesce(jsonb_object_agg(k.col, old_row -> k.col), '{}'::jsonb))
          FROM unnest(TG_ARGV) AS k(col)
      );
    END IF;
    payload := (envelope || body)::text;
    IF octet_length(payload) >= max_payload THEN
      payload := (envelope || jsonb_build_object('truncated', true))::text;
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

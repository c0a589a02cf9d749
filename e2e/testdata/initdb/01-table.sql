CREATE TABLE from_sql (id int PRIMARY KEY, note text);
INSERT INTO from_sql VALUES (1, 'init SQL ran in ' || current_database());

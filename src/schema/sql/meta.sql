-- crmbench's marker: a schema without this table (or with another tool's
-- name in it) is not crmbench's, and nothing destructive touches it.
CREATE TABLE crm.crmbench_meta (
    singleton         boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    tool              text        NOT NULL CHECK (tool = 'crmbench'),
    schema_version    integer     NOT NULL,
    crmbench_version  text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    complete          boolean     NOT NULL DEFAULT false,
    seed              bigint,
    scale             double precision,
    generator_version text,
    epoch             date,
    details           jsonb       NOT NULL DEFAULT '{}'::jsonb
);
COMMENT ON TABLE crm.crmbench_meta IS 'created by crmbench: marks this schema as crmbench''s own';

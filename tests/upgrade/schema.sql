-- Describes the schema pg_eventsource installed in the current database, one
-- section at a time, as text that two databases can be compared with (diff):
-- no OIDs, no data, everything sorted by a stable key.
--
--   psql -X -At -v section=functions -f tests/upgrade/schema.sql
--
-- pg_dump leaves extension members out, so this is written against the
-- catalogs. Sections (scripts/test_upgrade.sh checks each one):
--   extension     version, schema, relocatable, config tables (pg_extension_config_dump) with conditions
--   members       every object that belongs to the extension (pg_depend deptype 'e')
--   schemas       the schemas the extension's objects live in: owner, ACL, comment
--   functions     every function and aggregate in those schemas: pg_get_functiondef (arguments,
--                 defaults, result, language, volatility, strict, security definer, parallel,
--                 cost, rows, SET options, body), ACL, owner, comment; aggregates' pg_aggregate row
--   relations     tables, views, types, sequences: kind, options, persistence, RLS flags,
--                 replica identity, ACL, owner, comment
--   columns       name, position (attnum), type, NOT NULL, default, identity, generated,
--                 collation, column ACL, comment
--   constraints   pg_get_constraintdef with name, deferrability, validity, comment
--   indexes       pg_get_indexdef and flags
--   triggers      pg_get_triggerdef and tgenabled (O, A = ENABLE ALWAYS, R, D)
--   views         pg_get_viewdef
--   policies      row-level security policies
--   types         types other than tables' row types and arrays
--   init_privs    pg_init_privs (the privileges pg_dump treats as the extension's own)
--   dependencies  pg_depend between the extension's objects and anything else
--   rules         rewrite rules other than views' _RETURN
--
-- Objects in the extension's schemas that are not members are listed too
-- (marked "NOT A MEMBER"): an upgrade must not leave strays behind.

\set ON_ERROR_STOP 1
SET search_path = pg_catalog, pg_temp;

WITH ext AS (
    SELECT e.* FROM pg_extension e WHERE e.extname = 'pg_eventsource'
),
members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
nsps AS (   -- the schemas that are members and those that members live in
    SELECT n.oid, n.nspname FROM pg_namespace n
     WHERE n.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_namespace'::regclass)
        OR n.oid IN (SELECT c.relnamespace FROM pg_class c JOIN members m
                       ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
        OR n.oid IN (SELECT p.pronamespace FROM pg_proc p JOIN members m
                       ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid)
),
rels AS (
    SELECT c.* FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM nsps)
),
procs AS (
    SELECT p.* FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM nsps)
),
-- "" when the object is a member, else a marker
mem(classid, objid, note) AS (
    SELECT x.classid, x.objid,
           CASE WHEN EXISTS (SELECT FROM members m WHERE m.classid = x.classid AND m.objid = x.objid)
                THEN '' ELSE E'\n  NOT A MEMBER of the extension' END
      FROM (SELECT 'pg_class'::regclass::oid AS classid, oid AS objid FROM rels
            UNION ALL SELECT 'pg_proc'::regclass::oid, oid FROM procs
            UNION ALL SELECT 'pg_type'::regclass::oid, t.oid FROM pg_type t
                       WHERE t.typnamespace IN (SELECT oid FROM nsps)) x
),
lines(section, key, body) AS (
    -- extension ------------------------------------------------------------
    SELECT 'extension', ext.extname::text,
           format(E'version %s, schema %s, relocatable %s, owner %s',
                  ext.extversion, ext.extnamespace::regnamespace, ext.extrelocatable,
                  pg_get_userbyid(ext.extowner))
           || COALESCE((SELECT string_agg(format(E'\n  config table %s condition %L', c.cfg, c.cond), '' ORDER BY c.cfg::text)
                          FROM unnest(ext.extconfig::regclass[], ext.extcondition) c(cfg, cond)), E'\n  no config tables')
      FROM ext
    -- members --------------------------------------------------------------
    UNION ALL
    SELECT 'members', pg_describe_object(m.classid, m.objid, m.objsubid), ''
      FROM members m
    -- schemas --------------------------------------------------------------
    UNION ALL
    SELECT 'schemas', n.nspname::text,
           format('owner %s, acl %s, comment %L', pg_get_userbyid(n.nspowner),
                  CASE WHEN n.nspacl IS NULL THEN 'default' ELSE COALESCE((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(n.nspacl) a)::text, '{}') END,
                  obj_description(n.oid, 'pg_namespace'))
      FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM nsps)
    -- functions ------------------------------------------------------------
    UNION ALL
    SELECT 'functions', p.oid::regprocedure::text,
           CASE WHEN p.prokind = 'a' THEN
               (SELECT format(E'AGGREGATE returns %s, kind %s, transfn %s, finalfn %s, combinefn %s, serialfn %s, deserialfn %s, '
                              'msfunc %s, minvfunc %s, mfinalfn %s, finalextra %s, finalmodify %s, sortop %s, '
                              'transtype %s, transspace %s, mtranstype %s, initval %L, minitval %L, parallel %s, strict %s, volatility %s',
                              p.prorettype::regtype, a.aggkind, a.aggtransfn::regprocedure,
                              NULLIF(a.aggfinalfn, 0)::regprocedure, NULLIF(a.aggcombinefn, 0)::regprocedure,
                              NULLIF(a.aggserialfn, 0)::regprocedure, NULLIF(a.aggdeserialfn, 0)::regprocedure,
                              NULLIF(a.aggmtransfn, 0)::regprocedure, NULLIF(a.aggminvtransfn, 0)::regprocedure,
                              NULLIF(a.aggmfinalfn, 0)::regprocedure, a.aggfinalextra, a.aggfinalmodify,
                              NULLIF(a.aggsortop, 0)::regoperator, a.aggtranstype::regtype, a.aggtransspace,
                              NULLIF(a.aggmtranstype, 0)::regtype, a.agginitval, a.aggminitval,
                              p.proparallel, p.proisstrict, p.provolatile)
                  FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
           ELSE rtrim(pg_get_functiondef(p.oid), E'\n') END
           || format(E'\n  owner %s, acl %s, comment %L', pg_get_userbyid(p.proowner),
                     CASE WHEN p.proacl IS NULL THEN 'default' ELSE COALESCE((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(p.proacl) a)::text, '{}') END,
                     obj_description(p.oid, 'pg_proc'))
           || mem.note
      FROM procs p JOIN mem ON mem.classid = 'pg_proc'::regclass AND mem.objid = p.oid
    -- relations ------------------------------------------------------------
    UNION ALL
    SELECT 'relations', format('%s %s', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                                                        WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                                        WHEN 'c' THEN 'composite type' WHEN 'S' THEN 'sequence'
                                                        WHEN 'f' THEN 'foreign table' WHEN 'i' THEN 'index'
                                                        WHEN 'I' THEN 'partitioned index'
                                                        ELSE c.relkind::text END,
                               c.oid::regclass),
           format('options %s, persistence %s, row security %s, force row security %s, replica identity %s, '
                  'partition %s, row type %s, access method %s, owner %s, acl %s, comment %L',
                  c.reloptions, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
                  c.relispartition, c.reltype <> 0, (SELECT am.amname FROM pg_am am WHERE am.oid = c.relam),
                  pg_get_userbyid(c.relowner),
                  CASE WHEN c.relacl IS NULL THEN 'default' ELSE COALESCE((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(c.relacl) a)::text, '{}') END,
                  obj_description(c.oid, 'pg_class'))
           || CASE WHEN c.relkind = 'S' THEN
                  (SELECT format(E'\n  sequence %s start %s increment %s min %s max %s cache %s cycle %s',
                                 s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
                     FROM pg_sequence s WHERE s.seqrelid = c.oid)
              ELSE '' END
           || CASE WHEN c.relkind = 'i' THEN '' ELSE mem.note END
      FROM rels c JOIN mem ON mem.classid = 'pg_class'::regclass AND mem.objid = c.oid
    -- columns --------------------------------------------------------------
    UNION ALL
    SELECT 'columns', format('%s column %s %s', c.oid::regclass, lpad(a.attnum::text, 3, '0'),
                             CASE WHEN a.attisdropped THEN '(dropped)' ELSE quote_ident(a.attname) END),
           CASE WHEN a.attisdropped THEN 'dropped column' ELSE
           format('type %s, not null %s, default %s, identity %L, generated %L, collation %s, acl %s, comment %L',
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
                  CASE WHEN a.attcollation = t.typcollation THEN 'default' ELSE
                      (SELECT quote_ident(co.collname) FROM pg_collation co WHERE co.oid = a.attcollation) END,
                  CASE WHEN a.attacl IS NULL THEN 'default' ELSE COALESCE((SELECT array_agg(x::text ORDER BY x::text) FROM unnest(a.attacl) x)::text, '{}') END,
                  col_description(c.oid, a.attnum)) END
      FROM rels c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
      JOIN pg_type t ON t.oid = a.atttypid OR (a.attisdropped AND t.oid = 'int4'::regtype)
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
    -- constraints ----------------------------------------------------------
    UNION ALL
    SELECT 'constraints', format('%s constraint %s', COALESCE(co.conrelid::regclass::text, co.contypid::regtype::text),
                                 quote_ident(co.conname)),
           format('%s, type %s, deferrable %s, deferred %s, validated %s, no inherit %s, comment %L',
                  pg_get_constraintdef(co.oid), co.contype, co.condeferrable, co.condeferred,
                  co.convalidated, co.connoinherit, obj_description(co.oid, 'pg_constraint'))
      FROM pg_constraint co
     WHERE co.conrelid IN (SELECT oid FROM rels)
        OR co.contypid IN (SELECT t.oid FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM nsps))
    -- indexes --------------------------------------------------------------
    UNION ALL
    SELECT 'indexes', format('%s index %s', i.indrelid::regclass, i.indexrelid::regclass),
           format(E'%s\n  primary %s, unique %s, nulls not distinct %s, immediate %s, clustered %s, replica identity %s, valid %s, comment %L',
                  pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique, i.indnullsnotdistinct,
                  i.indimmediate, i.indisclustered, i.indisreplident, i.indisvalid,
                  obj_description(i.indexrelid, 'pg_class'))
      FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM rels)
    -- triggers -------------------------------------------------------------
    UNION ALL
    SELECT 'triggers', format('%s trigger %s', t.tgrelid::regclass, quote_ident(t.tgname)),
           format('%s; enabled %s, comment %L', pg_get_triggerdef(t.oid), t.tgenabled,
                  obj_description(t.oid, 'pg_trigger'))
      FROM pg_trigger t
     WHERE t.tgrelid IN (SELECT oid FROM rels) AND NOT t.tgisinternal
    -- views ----------------------------------------------------------------
    UNION ALL
    SELECT 'views', c.oid::regclass::text, pg_get_viewdef(c.oid, true)
      FROM rels c WHERE c.relkind IN ('v', 'm')
    -- policies -------------------------------------------------------------
    UNION ALL
    SELECT 'policies', format('%s policy %s', p.polrelid::regclass, quote_ident(p.polname)),
           format('command %s, permissive %s, roles %s, using %s, with check %s, comment %L',
                  p.polcmd, p.polpermissive,
                  (SELECT array_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END ORDER BY 1)
                     FROM unnest(p.polroles) r),
                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
                  obj_description(p.oid, 'pg_policy'))
      FROM pg_policy p WHERE p.polrelid IN (SELECT oid FROM rels)
    -- types ----------------------------------------------------------------
    UNION ALL
    SELECT 'types', t.oid::regtype::text,
           format('type %s, category %s, relation %s, element %s, base %s, not null %s, default %L, owner %s, acl %s, comment %L',
                  t.typtype, t.typcategory, NULLIF(t.typrelid, 0)::regclass, NULLIF(t.typelem, 0)::regtype,
                  NULLIF(t.typbasetype, 0)::regtype, t.typnotnull, t.typdefault, pg_get_userbyid(t.typowner),
                  CASE WHEN t.typacl IS NULL THEN 'default' ELSE COALESCE((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(t.typacl) a)::text, '{}') END,
                  obj_description(t.oid, 'pg_type'))
           || COALESCE((SELECT E'\n  labels ' || string_agg(quote_literal(en.enumlabel), ', ' ORDER BY en.enumsortorder)
                          FROM pg_enum en WHERE en.enumtypid = t.oid), '')
           || mem.note
      FROM pg_type t JOIN mem ON mem.classid = 'pg_type'::regclass AND mem.objid = t.oid
     WHERE t.typnamespace IN (SELECT oid FROM nsps)
       -- a table's row type and array types come with their table or element type
       AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
       AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
    -- init privs -----------------------------------------------------------
    UNION ALL
    SELECT 'init_privs', pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
           format('privtype %s, initprivs %s', ip.privtype,
                  (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(ip.initprivs) a))
      FROM pg_init_privs ip
     WHERE (ip.classoid, ip.objoid) IN (SELECT m.classid, m.objid FROM members m)
        OR (ip.classoid = 'pg_class'::regclass AND ip.objoid IN (SELECT oid FROM rels))
        OR (ip.classoid = 'pg_proc'::regclass AND ip.objoid IN (SELECT oid FROM procs))
        OR (ip.classoid = 'pg_namespace'::regclass AND ip.objoid IN (SELECT oid FROM nsps))
    -- dependencies ---------------------------------------------------------
    UNION ALL
    SELECT 'dependencies', format('%s -> %s (%s)', pg_describe_object(d.classid, d.objid, d.objsubid),
                                  pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), d.deptype),
           ''
      FROM pg_depend d
     WHERE (   (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM rels))
            OR (d.classid = 'pg_proc'::regclass AND d.objid IN (SELECT oid FROM procs))
            OR (d.classid = 'pg_type'::regclass AND d.objid IN (SELECT t.oid FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM nsps)))
            OR (d.classid = 'pg_namespace'::regclass AND d.objid IN (SELECT oid FROM nsps))
            OR (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT co.oid FROM pg_constraint co WHERE co.conrelid IN (SELECT oid FROM rels)))
            OR (d.classid = 'pg_trigger'::regclass AND d.objid IN (SELECT t.oid FROM pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM rels) AND NOT t.tgisinternal))
            OR (d.classid = 'pg_rewrite'::regclass AND d.objid IN (SELECT r.oid FROM pg_rewrite r WHERE r.ev_class IN (SELECT oid FROM rels)))
            OR (d.classid = 'pg_policy'::regclass AND d.objid IN (SELECT p.oid FROM pg_policy p WHERE p.polrelid IN (SELECT oid FROM rels)))
            OR (d.classid = 'pg_attrdef'::regclass AND d.objid IN (SELECT ad.oid FROM pg_attrdef ad WHERE ad.adrelid IN (SELECT oid FROM rels))))
       -- membership is the members section; toast tables are named by OID
       AND d.refclassid <> 'pg_extension'::regclass
       AND NOT (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM pg_class WHERE relnamespace = 'pg_toast'::regnamespace))
       AND NOT (d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM pg_class WHERE relnamespace = 'pg_toast'::regnamespace))
       AND NOT (d.classid = 'pg_type'::regclass AND d.objid IN (SELECT t.oid FROM pg_type t WHERE t.typrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'pg_toast'::regnamespace)))
    -- rules ----------------------------------------------------------------
    UNION ALL
    SELECT 'rules', format('%s rule %s', r.ev_class::regclass, quote_ident(r.rulename)),
           format('%s; enabled %s', pg_get_ruledef(r.oid), r.ev_enabled)
      FROM pg_rewrite r WHERE r.ev_class IN (SELECT oid FROM rels) AND r.rulename <> '_RETURN'
)
SELECT CASE WHEN body = '' THEN key ELSE key || E'\n  ' || replace(body, E'\n', E'\n  ') END
  FROM lines
 WHERE section = :'section'
 ORDER BY key COLLATE "C", body COLLATE "C";

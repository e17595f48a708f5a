-- lakehouse: materialization=OVERWRITE_PARTITIONS overwrite_filter="ts > '2026-01-01'"
SELECT * FROM daily

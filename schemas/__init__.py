"""Every shape of data in Feedback Factory: wire contracts (HTTP, Kafka, exports, errors) and, in `schemas.tables`, the SQL tables."""

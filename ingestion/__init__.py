"""Ingestion: decoding and validating events, idempotent storage of interactions and feedback, the Kafka consumer loop, dead letters."""

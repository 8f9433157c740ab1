"""AWS clients and the thin adapters over SQS, S3 and X-Ray."""

"""The job store in DynamoDB: items, owners, endings, sweeps, scheduling, webhook state."""

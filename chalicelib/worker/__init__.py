"""What the SQS-driven and scheduled Lambdas do: files, bundles, the sweeper."""

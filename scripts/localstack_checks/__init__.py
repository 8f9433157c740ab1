"""The AWS behaviours Delineate relies on, checked against a running LocalStack (scripts/localstack_smoke.py).

One module per part of the data plane: resources (health, the stack, its
outputs), dynamodb, sqs, s3. Each check takes the shared `Smoke` (harness.py)
and returns a one-line note, or raises.
"""

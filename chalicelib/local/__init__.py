"""Development-only runners: the embedded emulator, bootstrap, SQS consumers and the stack.

Nothing here is deployed: in the cloud, Lambda's SQS event source mapping and
EventBridge do what the consumer and sweeper loops do on one machine.
"""

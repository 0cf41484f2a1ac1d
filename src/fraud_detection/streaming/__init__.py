"""Transactions as a stream: JSON messages, Kafka clients and the producer CLI."""

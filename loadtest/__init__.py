"""Headless load generators and locust users for chat servers."""

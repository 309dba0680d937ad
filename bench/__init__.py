"""Benchmark suite for activerecord against raw drivers, SQLAlchemy, Peewee and Tortoise.

Run it with ``python -m bench --help``; see ``bench.runner`` for the orchestration.
"""

"""Balances, the ledger and the price table."""

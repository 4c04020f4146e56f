"""Accounts (tenants and sub-accounts), API keys and authentication."""

"""Referrals domain: codes, customers, invites, rewards. Knows nothing of Lambda or GraphQL."""

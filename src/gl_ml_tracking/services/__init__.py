"""Business rules, one function per use case. Services take a SQLAlchemy
session and the resolved project key; they know nothing about HTTP."""

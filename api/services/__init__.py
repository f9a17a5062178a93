"""The service layer: every business rule lives here, called alike by GraphQL resolvers and REST routes.

Services take an ``AsyncSession`` and the acting user, flush but never commit (the transport's unit of
work commits once), and raise ``api.errors.DomainError`` subclasses. They import neither FastAPI nor
Strawberry.
"""

"""Everything that touches the database: the only code that imports SQLAlchemy."""

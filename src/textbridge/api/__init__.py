"""The HTTP edge: the application factory, dependencies and error rendering."""

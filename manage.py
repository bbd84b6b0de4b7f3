#!/usr/bin/env python
"""Conveyor's command line: `python manage.py --help`."""

from app.cli import main

if __name__ == "__main__":
    main()

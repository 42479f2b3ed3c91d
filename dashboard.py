"""Tallyboard web app: the script Streamlit runs for every browser session (app.py serves it).

The page code lives in ui/dashboard.py; page paths (pages/*.py) resolve from this file's folder.
"""

from ui.dashboard import main

main()

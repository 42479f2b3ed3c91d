"""Runs, stored files, history, saved reports and statistics: shared by the web app and the scheduler daemon.

No Streamlit here. Modules: `runs` (generate_run: cache, rate limit, progress, audit), `files`
(FileStore: atomic writes, size limit, files served only by id after the scope check), `history`
(list, get, delete, re-run), `saved` (saved reports and templates), `stats` (the Statistics page's
numbers) and `access` (which runs a caller may see).
"""

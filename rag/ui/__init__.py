"""The Streamlit front-end: one module per page, shared resources and rendering helpers.

Nothing here retrieves or answers on its own: every page calls ``rag`` and only handles
presentation and per-browser-session state (``st.session_state``).
"""

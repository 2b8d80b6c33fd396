"""studyrag's study app: ``streamlit run app.py``."""

from rag.ui.app import main

main()

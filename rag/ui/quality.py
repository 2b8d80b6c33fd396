"""Placeholder until the feature module lands."""

import streamlit as st


def page() -> None:
    st.info("Coming soon.")

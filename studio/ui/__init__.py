"""The only Streamlit-aware code in the package."""

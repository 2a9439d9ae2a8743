"""The suite's root: puts this folder on the import path so that every test folder can
import the shared helpers of `testsupport.py`."""

"""The front end: one safe tokenizer and ast walk, to SymPy trees and to the IR."""

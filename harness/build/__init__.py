"""Build driving on the trusted side: nvcc plans, extension builds, header wheels, the content cache.

Everything the candidate's code compiles or loads goes through sandbox/ from here."""

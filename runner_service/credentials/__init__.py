"""Credentials: secrets a job's run needs, kept sealed and handed to Ansible only for the run.

    kinds         what each kind holds, checked at the boundary, and its fingerprint
    service       CredentialService: create, list, show, delete; the names a template may use
    private_data  what a run gets: files in its private directory, removed when it ends
"""

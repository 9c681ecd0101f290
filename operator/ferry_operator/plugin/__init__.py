"""The pieces behind ``kubectl ferry`` (the entry point is :mod:`ferry_operator.kubectl_plugin`).

- :mod:`.errors`: exit codes and the exceptions that map to them.
- :mod:`.positions`: parse ``--to`` positions and ``--resume-at`` times, make nonces.
- :mod:`.lifecycle`: decide the spec merge patch for each verb (pure).
- :mod:`.gitops`: notice a task managed by Argo CD or Flux, to warn before patching it.
- :mod:`.mergepatch`: compute and apply JSON merge patches.
- :mod:`.revisions`: read config-revision ConfigMaps, diff them, plan a rollback (pure).
- :mod:`.formatting`: tables, panels and progress bars (pure).
- :mod:`.kube`: the only module that talks to the API server.
- :mod:`.commands`: one function per verb, joining the above.
"""

__all__: list[str] = []

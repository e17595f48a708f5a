import os
import subprocess
import sys

import pytest

import lakehouse


def test_decorators_are_inert_and_record_metadata():
    @lakehouse.model(materialization="REPLACE", partitioned_by="country")
    @lakehouse.python("3.11", pip={"pandas": "2.2.3"})
    @lakehouse.resources(cpus=2, memory="4GB", timeout=600)
    def usd(data=lakehouse.Model("transactions", columns=["usd"]), m=lakehouse.Parameter("min_usd")):
        return data

    assert usd("x") == "x"  # still the plain function
    meta = usd.__lakehouse__
    assert meta["model"]["name"] == "usd"
    assert meta["model"]["materialization"] == "REPLACE"
    assert meta["model"]["partitioned_by"] == ["country"]
    assert meta["model"]["cache"] is True
    assert meta["model"]["internet_access"] is False
    assert meta["python"] == {"version": "3.11", "pip": {"pandas": "2.2.3"}}
    assert meta["resources"] == {"cpus": 2, "memory": "4GB", "timeout": 600}


def test_model_name_override_and_expectation():
    @lakehouse.expectation()
    @lakehouse.python("3.10")
    def check(data=lakehouse.Model("m")):
        return True

    assert "expectation" in check.__lakehouse__

    @lakehouse.model(name="other")
    def f():
        return None

    assert f.__lakehouse__["model"]["name"] == "other"


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"materialization": "UPSERT"}, ValueError),
        ({"materialization": "OVERWRITE_PARTITIONS"}, ValueError),
        ({"name": 3}, TypeError),
    ],
)
def test_model_rejects_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        lakehouse.model(**kwargs)


def test_python_rejects_non_string_version():
    with pytest.raises(TypeError):
        lakehouse.python(3.11)


def test_model_and_parameter_markers():
    m = lakehouse.Model("sales.transactions", columns=["id"], filter="usd > 1", ref="main")
    assert (m.name, m.columns, m.filter, m.ref) == ("sales.transactions", ["id"], "usd > 1", "main")
    assert m == lakehouse.Model("sales.transactions", columns=["id"], filter="usd > 1", ref="main")
    assert "columns=['id']" in repr(m)
    assert lakehouse.Parameter("x") == lakehouse.Parameter("x")
    with pytest.raises(TypeError):
        lakehouse.Model("")
    with pytest.raises(TypeError):
        lakehouse.Parameter(None)


def test_import_needs_nothing_else():
    # `import lakehouse` must not import pyarrow (or anything heavy).
    code = "import sys, lakehouse; assert 'pyarrow' not in sys.modules, sorted(sys.modules)"
    root = os.path.join(os.path.dirname(__file__), "..")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=root))

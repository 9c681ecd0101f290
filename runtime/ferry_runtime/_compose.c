/* compose(pieces, columns) -> list[bytes]: each row's record assembled in one allocation.
 *
 * formats.encode_reads writes many records of one shape: constant bytes the records share
 * (a Maxwell head, a Debezium envelope) around each row's own bytes (its key's JSON, its
 * row's JSON). In Python, `head + key + middle + row + tail` makes four objects and copies
 * the growing prefix four times, a row; here each record is one allocation and one copy.
 * `pieces` is a tuple of bytes (copied as they are) and ints (an index into `columns`, a
 * tuple of equally long lists of bytes: that row's item). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *compose(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *pieces, *columns;
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &pieces, &PyTuple_Type, &columns))
        return NULL;
    Py_ssize_t piece_count = PyTuple_GET_SIZE(pieces), column_count = PyTuple_GET_SIZE(columns);
    Py_ssize_t rows = -1, fixed = 0;
    for (Py_ssize_t c = 0; c < column_count; c++) {
        PyObject *column = PyTuple_GET_ITEM(columns, c);
        if (!PyList_Check(column) || (rows >= 0 && PyList_GET_SIZE(column) != rows)) {
            PyErr_SetString(PyExc_ValueError, "columns are lists of one length");
            return NULL;
        }
        rows = PyList_GET_SIZE(column);
    }
    for (Py_ssize_t p = 0; p < piece_count; p++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, p);
        if (PyBytes_Check(piece)) {
            fixed += PyBytes_GET_SIZE(piece);
            continue;
        }
        Py_ssize_t index = PyLong_Check(piece) ? PyLong_AsSsize_t(piece) : -1;
        if (index < 0 || index >= column_count) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_ValueError, "a piece is bytes or a column's index");
            }
            return NULL;
        }
    }
    if (rows < 0)
        rows = 0;
    PyObject *out = PyList_New(rows);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t r = 0; r < rows; r++) {
        Py_ssize_t size = fixed;
        for (Py_ssize_t p = 0; p < piece_count; p++) {
            PyObject *piece = PyTuple_GET_ITEM(pieces, p);
            if (PyBytes_Check(piece))
                continue;
            PyObject *item = PyList_GET_ITEM(PyTuple_GET_ITEM(columns, PyLong_AsSsize_t(piece)), r);
            if (!PyBytes_Check(item)) {
                Py_DECREF(out);
                PyErr_SetString(PyExc_TypeError, "a column's items are bytes");
                return NULL;
            }
            size += PyBytes_GET_SIZE(item);
        }
        PyObject *record = PyBytes_FromStringAndSize(NULL, size);
        if (record == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        char *at = PyBytes_AS_STRING(record);
        for (Py_ssize_t p = 0; p < piece_count; p++) {
            PyObject *piece = PyTuple_GET_ITEM(pieces, p);
            if (!PyBytes_Check(piece))
                piece = PyList_GET_ITEM(PyTuple_GET_ITEM(columns, PyLong_AsSsize_t(piece)), r);
            memcpy(at, PyBytes_AS_STRING(piece), (size_t)PyBytes_GET_SIZE(piece));
            at += PyBytes_GET_SIZE(piece);
        }
        PyList_SET_ITEM(out, r, record);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"compose", compose, METH_VARARGS,
     "compose(pieces, columns) -> list[bytes]: for each row, the pieces joined, an int piece "
     "standing for that row's item of columns[int]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_compose",
    "Records of one shape assembled in one allocation each (formats.encode_reads).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__compose(void) { return PyModule_Create(&module); }

/*
 * Optional C speedups for wsio's WebSocket hot path.
 *
 * apply_mask(data, mask) -> bytes
 *     XOR a payload with a 4-byte masking key repeated (RFC 6455 section 5.3),
 *     eight bytes at a time.
 *
 * The pure-Python fallbacks live in wsio/websocket/frames.py and give
 * identical results.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
/* 16-byte vectors: SSE2 / NEON code from plain C, with a scalar fallback. */
typedef unsigned char wsio_v16 __attribute__((vector_size(16)));
#define WSIO_VECTORS 1
#endif

/*
 * dst[i] = src[i] ^ key[(phase + i) % 4] for i < n (dst may equal src).
 * 64 bytes per step, then 16, 8 and single bytes; every step is a multiple of
 * 4 bytes long, so one precomputed key pattern serves them all.
 */
static void
mask_copy(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
          const unsigned char *key, int phase)
{
    unsigned char pattern[16];
    Py_ssize_t i = 0;
    uint64_t k64;

    for (int j = 0; j < 16; j++) {
        pattern[j] = key[(phase + j) & 3];
    }
#ifdef WSIO_VECTORS
    {
        wsio_v16 k;
        memcpy(&k, pattern, 16);
        for (; i + 64 <= n; i += 64) {
            wsio_v16 a, b, c, d;
            memcpy(&a, src + i, 16);
            memcpy(&b, src + i + 16, 16);
            memcpy(&c, src + i + 32, 16);
            memcpy(&d, src + i + 48, 16);
            a ^= k;
            b ^= k;
            c ^= k;
            d ^= k;
            memcpy(dst + i, &a, 16);
            memcpy(dst + i + 16, &b, 16);
            memcpy(dst + i + 32, &c, 16);
            memcpy(dst + i + 48, &d, 16);
        }
        for (; i + 16 <= n; i += 16) {
            wsio_v16 a;
            memcpy(&a, src + i, 16);
            a ^= k;
            memcpy(dst + i, &a, 16);
        }
    }
#endif
    memcpy(&k64, pattern, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, src + i, 8);
        word ^= k64;
        memcpy(dst + i, &word, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ pattern[i & 3];
    }
}

static PyObject *
apply_mask(PyObject *self, PyObject *args)
{
    Py_buffer data, mask;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*y*:apply_mask", &data, &mask)) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    mask_copy((unsigned char *)PyBytes_AS_STRING(result), (const unsigned char *)data.buf,
              data.len, (const unsigned char *)mask.buf, 0);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

/*
 * mask_join(chunks, mask) -> bytes
 *     The concatenation of the buffers in the list *chunks*, unmasked with
 *     *mask* as one payload (the mask's phase runs on across chunks): one
 *     allocation and one pass for a frame that arrived in many reads.
 */
static PyObject *
mask_join(PyObject *self, PyObject *args)
{
    PyObject *chunks;
    Py_buffer mask;
    PyObject *result = NULL;
    Py_ssize_t count, i, total = 0, pos = 0;
    unsigned char key[4];

    if (!PyArg_ParseTuple(args, "O!y*:mask_join", &PyList_Type, &chunks, &mask)) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must be 4 bytes");
        PyBuffer_Release(&mask);
        return NULL;
    }
    memcpy(key, mask.buf, 4);
    PyBuffer_Release(&mask);
    count = PyList_GET_SIZE(chunks);
    for (i = 0; i < count; i++) {
        Py_buffer view;
        if (PyObject_GetBuffer(PyList_GET_ITEM(chunks, i), &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        total += view.len;
        PyBuffer_Release(&view);
    }
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) {
        return NULL;
    }
    {
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
        for (i = 0; i < count; i++) {
            Py_buffer view;
            const unsigned char *src;
            Py_ssize_t n;
            int phase = (int)(pos & 3);

            if (PyObject_GetBuffer(PyList_GET_ITEM(chunks, i), &view, PyBUF_SIMPLE) < 0) {
                Py_DECREF(result);
                return NULL;
            }
            src = (const unsigned char *)view.buf;
            n = view.len;
            if (pos + n > total) {  /* a chunk grew meanwhile */
                PyBuffer_Release(&view);
                Py_DECREF(result);
                PyErr_SetString(PyExc_ValueError, "chunks changed size");
                return NULL;
            }
            mask_copy(dst + pos, src, n, key, phase);
            pos += n;
            PyBuffer_Release(&view);
        }
    }
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", apply_mask, METH_VARARGS,
     "apply_mask(data, mask) -> bytes: XOR data with the 4-byte mask repeated."},
    {"mask_join", mask_join, METH_VARARGS,
     "mask_join(chunks, mask) -> bytes: join a list of buffers and unmask them as one payload."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "wsio._speedups",
    "Optional C speedups for wsio.",
    -1,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}

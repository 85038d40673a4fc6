// Debian's libssl-dev (OpenSSL 3): TLS for the native HTTPS listener (docs/TLS.md).
// Many of OpenSSL's settings are macros over SSL_CTX_ctrl, and the ALPN choice is a C
// callback; Swift imports functions, so they are written here, as small as they can be.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/// Mozilla's "intermediate" TLS 1.2 cipher list (TLS 1.3 keeps OpenSSL's default suites,
/// which are the same as Mozilla's).
#define NT_TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"   \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"     \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

/// The first error on this thread's OpenSSL error queue (the cause; later ones only say
/// where it surfaced), as "library: reason", and the queue cleared. Returns 1 when the cause
/// is a plain HTTP request sent to a TLS port.
static inline int nt_tls_error_text(char *out, size_t len) {
    unsigned long e = ERR_peek_error();
    int plain_http = ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST;
    if (e == 0) {
        snprintf(out, len, "no detail from OpenSSL");
    } else {
        const char *lib = ERR_lib_error_string(e);
        const char *reason = ERR_reason_error_string(e);
        snprintf(out, len, "%s: %s", lib ? lib : "OpenSSL", reason ? reason : "unknown error");
    }
    ERR_clear_error();
    return plain_http;
}

/// The protocols a listener speaks, in ALPN's wire form and in the order it prefers them.
static const unsigned char nt_tls_alpn_http1[] = "\x08http/1.1";
static const unsigned char nt_tls_alpn_http2[] = "\x02h2\x08http/1.1";

/// ALPN: the first of the listener's protocols (`arg`: one of the lists above) that the client
/// offers; a client that offers none of them gets the fatal no_application_protocol alert RFC
/// 7301 asks for.
static int nt_tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                              unsigned int inlen, void *arg) {
    (void)ssl;
    const unsigned char *ours = arg;
    unsigned int length = (unsigned int)strlen((const char *)ours);  // length-prefixed names hold no NUL
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, outlen, ours, length, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/// The protocol ALPN chose ("h2", "http/1.1"), or "" when the client asked for none.
static inline void nt_tls_alpn_selected(SSL *ssl, char *out, size_t len) {
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    if (p == NULL || n + 1 > len) n = 0;
    if (n > 0) memcpy(out, p, n);
    out[n] = 0;
}

static inline int nt_tls_check_readable(const char *what, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open the %s file %s: %s", what, path, strerror(errno));
        return 0;
    }
    fclose(f);
    return 1;
}

/// Whether this kernel offers kTLS: `tls` among the ULPs in /proc/sys/net/ipv4/tcp_available_ulp
/// (the module loaded or built in). Where it does not, asking OpenSSL for kTLS would cost a
/// failing setsockopt(TCP_ULP) per connection and change nothing.
static inline int nt_tls_kernel_offers_ktls(void) {
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (f == NULL) return 0;
    char word[64];
    int found = 0;
    while (fscanf(f, "%63s", word) == 1) {
        if (strcmp(word, "tls") == 0) found = 1;
    }
    fclose(f);
    return found;
}

/// Whether the kernel encrypts this connection's records (kTLS send) or decrypts them (receive).
static inline int nt_tls_ktls_send(SSL *ssl) { return BIO_get_ktls_send(SSL_get_wbio(ssl)) ? 1 : 0; }
static inline int nt_tls_ktls_receive(SSL *ssl) { return BIO_get_ktls_recv(SSL_get_rbio(ssl)) ? 1 : 0; }

/// An SSL_CTX extra-data index, registered on first use (from any thread): `name()` gives it,
/// -1 when OpenSSL could not register one. `on_free` (a CRYPTO_EX_free made with NT_TLS_EX_FREE,
/// or NULL for data a context only borrows) gets a context's data when the context is freed.
#define NT_TLS_CTX_INDEX(name, on_free)                                                          \
    static int name##_value = -1;                                                                \
    static void name##_init(void) { name##_value = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, on_free); } \
    static int name(void) {                                                                      \
        static pthread_once_t once = PTHREAD_ONCE_INIT;                                          \
        pthread_once(&once, name##_init);                                                        \
        return name##_value;                                                                     \
    }

/// A CRYPTO_EX_free callback `name` that hands a context's data (a `type *`, when there is
/// one) to `release`.
#define NT_TLS_EX_FREE(name, type, release)                                                     \
    static void name(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) { \
        (void)parent;                                                                            \
        (void)ad;                                                                                \
        (void)idx;                                                                               \
        (void)argl;                                                                              \
        (void)argp;                                                                              \
        if (ptr != NULL) release((type *)ptr);                                                   \
    }

/// OCSP stapling from a file (nginx's `ssl_stapling_file`): a DER OCSP response, checked
/// when it is read, sent to the clients that ask for one (status_request) while it is current.
typedef struct {
    unsigned char *der;
    int len;
    time_t next_update; /* 0: the response names no next update */
} nt_tls_staple;

static void nt_tls_staple_release(nt_tls_staple *staple) {
    OPENSSL_free(staple->der);
    free(staple);
}
NT_TLS_EX_FREE(nt_tls_staple_free, nt_tls_staple, nt_tls_staple_release)
NT_TLS_CTX_INDEX(nt_tls_staple_index, nt_tls_staple_free)

/// The status_request callback of a context with a staple (the context SNI chose): a copy of
/// the response for OpenSSL to send and free, or nothing once it is past its next update.
static int nt_tls_status(SSL *ssl, void *arg) {
    (void)arg;
    nt_tls_staple *staple = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), nt_tls_staple_index());
    if (staple == NULL || SSL_get_tlsext_status_type(ssl) != TLSEXT_STATUSTYPE_ocsp) return SSL_TLSEXT_ERR_NOACK;
    if (staple->next_update != 0 && time(NULL) >= staple->next_update) return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_malloc((size_t)staple->len);
    if (copy == NULL) return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, staple->der, (size_t)staple->len);
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, staple->len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

static time_t nt_tls_asn1_seconds(const ASN1_GENERALIZEDTIME *t) {
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return timegm(&tm);
}

static void nt_tls_asn1_text(const ASN1_GENERALIZEDTIME *t, char *out, size_t len) {
    out[0] = 0;
    if (t == NULL) {
        snprintf(out, len, "none");
        return;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return;
    if (ASN1_TIME_print(bio, t) == 1) {
        int n = BIO_read(bio, out, (int)len - 1);
        out[n > 0 ? n : 0] = 0;
    }
    BIO_free(bio);
}

/// Reads the DER OCSP response in `path` for the certificate `ctx` holds (from `cert`) and
/// staples it: it must be a successful response, signed (the signer in the response or in the
/// certificate file), about this certificate (its issuer is the next certificate in the file,
/// or itself), saying "good", and current. 0 with a message in `err` that names the files.
static int nt_tls_load_staple(SSL_CTX *ctx, const char *path, const char *cert, char *err, size_t errlen) {
    char detail[256];
    if (!nt_tls_check_readable("OCSP response", path, err, errlen)) return 0;
    if (nt_tls_staple_index() < 0) {
        snprintf(err, errlen, "cannot register OpenSSL extra data for OCSP stapling");
        return 0;
    }
    BIO *bio = BIO_new_file(path, "rb");
    OCSP_RESPONSE *response = bio != NULL ? d2i_OCSP_RESPONSE_bio(bio, NULL) : NULL;
    BIO_free(bio);
    if (response == NULL) {
        nt_tls_error_text(detail, sizeof detail);
        snprintf(err, errlen, "the OCSP response file %s holds no DER OCSP response (%s)", path, detail);
        return 0;
    }
    int ok = 0;
    OCSP_BASICRESP *basic = NULL;
    OCSP_CERTID *id = NULL;
    STACK_OF(X509) *signers = NULL;
    X509_STORE *store = NULL;
    int answer = OCSP_response_status(response);
    if (answer != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(err, errlen, "the OCSP response in %s is not a successful one (%s)", path, OCSP_response_status_str(answer));
        goto done;
    }
    basic = OCSP_response_get1_basic(response);
    if (basic == NULL) {
        snprintf(err, errlen, "the OCSP response in %s holds no basic response", path);
        goto done;
    }
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    X509 *issuer = NULL;
    for (int i = 0; chain != NULL && i < sk_X509_num(chain) && issuer == NULL; i++) {
        if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK) issuer = sk_X509_value(chain, i);
    }
    if (issuer == NULL && X509_check_issued(leaf, leaf) == X509_V_OK) issuer = leaf;
    if (issuer == NULL) {
        snprintf(err, errlen, "the certificate file %s holds no issuer of its certificate, to check the OCSP response in %s against",
                 cert, path);
        goto done;
    }
    signers = sk_X509_new_null();
    store = X509_STORE_new();
    if (signers == NULL || store == NULL || sk_X509_push(signers, leaf) <= 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        if (sk_X509_push(signers, sk_X509_value(chain, i)) <= 0) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
    }
    // The signature is checked; whether its signer may speak for the issuer is the client's
    // to judge, with its own trust store.
    if (OCSP_basic_verify(basic, signers, store, OCSP_TRUSTOTHER | OCSP_NOVERIFY) != 1) {
        nt_tls_error_text(detail, sizeof detail);
        snprintf(err, errlen, "the OCSP response in %s has no valid signature (%s)", path, detail);
        goto done;
    }
    id = OCSP_cert_to_id(NULL, leaf, issuer);
    int status = 0, reason = 0;
    ASN1_GENERALIZEDTIME *revoked = NULL, *this_update = NULL, *next_update = NULL;
    if (id == NULL || OCSP_resp_find_status(basic, id, &status, &reason, &revoked, &this_update, &next_update) != 1) {
        snprintf(err, errlen, "the OCSP response in %s is not about the certificate in %s", path, cert);
        goto done;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        snprintf(err, errlen, "the OCSP response in %s says the certificate in %s is %s", path, cert, OCSP_cert_status_str(status));
        goto done;
    }
    if (OCSP_check_validity(this_update, next_update, 300, -1) != 1) {
        char from[64], until[64];
        nt_tls_asn1_text(this_update, from, sizeof from);
        nt_tls_asn1_text(next_update, until, sizeof until);
        ERR_clear_error();
        snprintf(err, errlen, "the OCSP response in %s is not current (this update %s, next update %s)", path, from, until);
        goto done;
    }
    nt_tls_staple *staple = calloc(1, sizeof *staple);
    if (staple == NULL || (staple->len = i2d_OCSP_RESPONSE(response, &staple->der)) <= 0) {
        free(staple);
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    staple->next_update = nt_tls_asn1_seconds(next_update);
    SSL_CTX_set_ex_data(ctx, nt_tls_staple_index(), staple);
    SSL_CTX_set_tlsext_status_cb(ctx, nt_tls_status);
    ok = 1;
done:
    OCSP_CERTID_free(id);
    sk_X509_free(signers);
    X509_STORE_free(store);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(response);
    return ok;
}

/// A server context: TLS 1.2 and 1.3 only, Mozilla's intermediate ciphers, no compression, no
/// renegotiation, session tickets and a session cache for resumption, ALPN http/1.1, the
/// certificate chain and key from PEM files, and an OCSP response to staple when `ocsp` is not
/// NULL; with `ktls`, records are handed to the kernel after the handshake where it takes them
/// (SSL_OP_ENABLE_KTLS; OpenSSL goes on in user space where it does not). NULL with a message
/// in `err` that names the file and the reason.
static inline SSL_CTX *nt_tls_server_context(const char *cert, const char *key, const char *ocsp, int http2, int ktls,
                                             char *err, size_t errlen) {
    char detail[256];
    if (!nt_tls_check_readable("certificate", cert, err, errlen) || !nt_tls_check_readable("key", key, err, errlen)) {
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        nt_tls_error_text(detail, sizeof detail);
        snprintf(err, errlen, "cannot make a TLS context: %s", detail);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (ktls) SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    // Partial writes and a moving buffer: the output queue hands over what it has staged and
    // retries with the same bytes. Released buffers: an idle connection holds no record buffers.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_dh_auto(ctx, 1);
    // Read ahead: one read(2) takes a whole record (and whatever follows it) instead of its
    // 5-byte header and then its body. What OpenSSL holds back is then invisible to epoll: the
    // loop asks nt_tls_pending and reads on (docs/TLS.md).
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"needletail", 10);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_set_cipher_list(ctx, NT_TLS12_CIPHERS) != 1) {
        nt_tls_error_text(detail, sizeof detail);
        snprintf(err, errlen, "cannot set the cipher list: %s", detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        nt_tls_error_text(detail, sizeof detail);
        snprintf(err, errlen, "the certificate file %s holds no usable PEM certificate chain (%s)", cert, detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        int mismatch = ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH;
        nt_tls_error_text(detail, sizeof detail);
        if (mismatch) {
            snprintf(err, errlen, "the key in %s does not belong to the certificate in %s (%s)", key, cert, detail);
        } else {
            snprintf(err, errlen, "the key file %s holds no usable PEM private key (%s)", key, detail);
        }
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        nt_tls_error_text(detail, sizeof detail);
        snprintf(err, errlen, "the key in %s does not belong to the certificate in %s (%s)", key, cert, detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ocsp != NULL && !nt_tls_load_staple(ctx, ocsp, cert, err, errlen)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, nt_tls_alpn_select, (void *)(http2 ? nt_tls_alpn_http2 : nt_tls_alpn_http1));
    return ctx;
}

/// Session-ticket keys, rotated (RFC 5077 tickets and TLS 1.3's): a new key every `lifetime`
/// seconds, checked when a ticket is issued; a ticket from the key before is still accepted
/// (and replaced) for one more lifetime, older ones mean a full handshake. Owned by the
/// listener's default context, which every connection's tickets go through.
typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t made;
} nt_tls_ticket_key;

#define NT_TLS_MAX_TICKET_KEY_FILES 4

typedef struct {
    pthread_mutex_t lock;
    long lifetime;
    int count; /* keys in use: keys[0] is the one new tickets get; at most 2 when made here */
    int fixed; /* the keys came from files (shared by several servers): never made or retired here */
    nt_tls_ticket_key keys[NT_TLS_MAX_TICKET_KEY_FILES];
} nt_tls_ticket_ring;

static void nt_tls_ring_release(nt_tls_ticket_ring *ring) {
    pthread_mutex_destroy(&ring->lock);
    OPENSSL_cleanse(ring, sizeof *ring);
    free(ring);
}
NT_TLS_EX_FREE(nt_tls_ring_free, nt_tls_ticket_ring, nt_tls_ring_release)

/// Two indexes: the default context owns its ring (freed with it); its SNI contexts borrow it
/// (a connection switched to one by SNI still holds the default context, its session context).
NT_TLS_CTX_INDEX(nt_tls_ring_index, nt_tls_ring_free)
NT_TLS_CTX_INDEX(nt_tls_ring_borrowed, NULL)

static int nt_tls_new_key(nt_tls_ticket_key *key, time_t now) {
    if (RAND_bytes(key->name, 16) != 1 || RAND_priv_bytes(key->aes, 32) != 1 || RAND_priv_bytes(key->hmac, 32) != 1) return 0;
    key->made = now;
    return 1;
}

static int nt_tls_ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cipher,
                                EVP_MAC_CTX *mac, int enc) {
    SSL_CTX *current = SSL_get_SSL_CTX(ssl);
    nt_tls_ticket_ring *ring = SSL_CTX_get_ex_data(current, nt_tls_ring_index());
    if (ring == NULL) ring = SSL_CTX_get_ex_data(current, nt_tls_ring_borrowed());
    if (ring == NULL) return -1;
    time_t now = time(NULL);
    nt_tls_ticket_key key;
    int result = 1;
    pthread_mutex_lock(&ring->lock);
    if (enc) {
        if (!ring->fixed && (ring->count == 0 || now - ring->keys[0].made >= ring->lifetime)) {
            nt_tls_ticket_key fresh;
            if (!nt_tls_new_key(&fresh, now)) {
                pthread_mutex_unlock(&ring->lock);
                return -1;
            }
            ring->keys[1] = ring->keys[0];
            ring->keys[0] = fresh;
            ring->count = ring->count == 0 ? 1 : 2;
        }
        key = ring->keys[0];
    } else {
        int found = -1;
        for (int i = 0; i < ring->count; i++) {
            if (memcmp(ring->keys[i].name, key_name, 16) == 0) found = i;
        }
        // A key is good for two lifetimes from when it was made: one as the current key, one
        // as the key before (its tickets are then replaced).
        if (found < 0 || (!ring->fixed && now - ring->keys[found].made >= 2 * ring->lifetime)) {
            pthread_mutex_unlock(&ring->lock);
            OPENSSL_cleanse(&key, sizeof key);
            return 0;
        }
        key = ring->keys[found];
        // Renewed: a ticket of the key before, and every TLS 1.3 resumption. A TLS 1.3 client
        // uses a ticket once (RFC 8446 C.4), so a resumed connection that got no new ticket
        // made the client's next connection a full handshake (wrk: every other one).
        // OpenSSL's own keys send one on resumption too.
        if (found != 0 || (!ring->fixed && now - key.made >= ring->lifetime) || SSL_version(ssl) >= TLS1_3_VERSION) result = 2;
    }
    pthread_mutex_unlock(&ring->lock);
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof key.hmac);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    int ok;
    if (enc) {
        memcpy(key_name, key.name, 16);
        ok = RAND_bytes(iv, 16) == 1 && EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key.aes, iv) == 1 &&
             EVP_MAC_CTX_set_params(mac, params) == 1;
    } else {
        ok = EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key.aes, iv) == 1 && EVP_MAC_CTX_set_params(mac, params) == 1;
    }
    OPENSSL_cleanse(&key, sizeof key);
    return ok ? result : -1;
}

/// Rotated ticket keys for `ctx` (a listener's default context), a new one every `lifetime`
/// seconds. 1 on success.
static inline nt_tls_ticket_ring *nt_tls_rotate_tickets(SSL_CTX *ctx, long lifetime) {
    nt_tls_ticket_ring *ring = calloc(1, sizeof *ring);
    if (ring == NULL || nt_tls_ring_index() < 0 || nt_tls_ring_borrowed() < 0) {
        free(ring);
        return NULL;
    }
    pthread_mutex_init(&ring->lock, NULL);
    ring->lifetime = lifetime > 0 ? lifetime : 1;
    SSL_CTX_set_ex_data(ctx, nt_tls_ring_index(), ring);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, nt_tls_ticket_key_cb);
    return ring;
}

/// Ticket keys from files instead of made here, so that several servers behind one name resume
/// each other's sessions: each file holds 80 random bytes (`openssl rand 80`), laid out as
/// nginx's `ssl_session_ticket_key` files are (16 bytes of name, 32 of HMAC-SHA256 key, 32 of
/// AES-256 key). New tickets get the first; the others are still accepted (and replaced). The
/// keys do not rotate here: replacing the files and reloading does. 0 with a message in `err`.
static int nt_tls_load_ticket_keys(nt_tls_ticket_ring *ring, const char *const *files, int count, char *err, size_t errlen) {
    if (count > NT_TLS_MAX_TICKET_KEY_FILES) {
        snprintf(err, errlen, "at most %d session-ticket key files", NT_TLS_MAX_TICKET_KEY_FILES);
        return 0;
    }
    for (int i = 0; i < count; i++) {
        FILE *f = fopen(files[i], "rb");
        if (f == NULL) {
            snprintf(err, errlen, "cannot open the session-ticket key file %s: %s", files[i], strerror(errno));
            return 0;
        }
        unsigned char bytes[81];
        size_t n = fread(bytes, 1, sizeof bytes, f);
        fclose(f);
        if (n != 80) {
            OPENSSL_cleanse(bytes, sizeof bytes);
            snprintf(err, errlen, "the session-ticket key file %s holds %s%zu bytes, not 80 (make one with `openssl rand 80 > FILE`)",
                     files[i], n > 80 ? "more than " : "", n > 80 ? (size_t)80 : n);
            return 0;
        }
        memcpy(ring->keys[i].name, bytes, 16);
        memcpy(ring->keys[i].hmac, bytes + 16, 32);
        memcpy(ring->keys[i].aes, bytes + 48, 32);
        ring->keys[i].made = time(NULL);
        OPENSSL_cleanse(bytes, sizeof bytes);
    }
    ring->count = count;
    ring->fixed = count > 0;
    return 1;
}

/// The other certificates of a listener (SNI), owned by its default context: freed with it,
/// so that a context replaced by a reload stays whole for the handshakes still using it.
typedef struct {
    int count;
    SSL_CTX *contexts[];
} nt_tls_sni_set;

static void nt_tls_sni_release(nt_tls_sni_set *set) {
    for (int i = 0; i < set->count; i++) SSL_CTX_free(set->contexts[i]);
    free(set);
}
NT_TLS_EX_FREE(nt_tls_sni_free, nt_tls_sni_set, nt_tls_sni_release)

NT_TLS_CTX_INDEX(nt_tls_sni_index, nt_tls_sni_free)

static int nt_tls_certificate_names(SSL_CTX *ctx, const char *name) {
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    return cert != NULL && X509_check_host(cert, name, 0, 0, NULL) == 1;
}

/// SNI: the first certificate whose names (subjectAltName DNS entries, wildcards as RFC 6125
/// says) cover the name the client asked for; the default one otherwise.
static int nt_tls_servername(SSL *ssl, int *alert, void *arg) {
    (void)alert;
    (void)arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL) return SSL_TLSEXT_ERR_NOACK;
    SSL_CTX *current = SSL_get_SSL_CTX(ssl);
    nt_tls_sni_set *set = SSL_CTX_get_ex_data(current, nt_tls_sni_index());
    if (set == NULL || nt_tls_certificate_names(current, name)) return SSL_TLSEXT_ERR_OK;
    for (int i = 0; i < set->count; i++) {
        if (nt_tls_certificate_names(set->contexts[i], name)) {
            SSL_set_SSL_CTX(ssl, set->contexts[i]);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/// A listener's contexts from `count` certificate and key files (and OCSP response files, NULL
/// where there is none): the first is the default, the others are chosen by SNI. NULL with a
/// message in `err` (see nt_tls_server_context). Tickets' keys rotate every `ticket_lifetime`
/// seconds, or come from `ticket_files` when there are any.
static inline SSL_CTX *nt_tls_server_set(const char *const *certs, const char *const *keys, const char *const *ocsps, int count,
                                         long ticket_lifetime, const char *const *ticket_files, int ticket_file_count,
                                         int http2, int ktls, char *err, size_t errlen) {
    int index = nt_tls_sni_index();
    if (index < 0) {
        snprintf(err, errlen, "cannot register OpenSSL extra data for SNI");
        return NULL;
    }
    SSL_CTX *first = nt_tls_server_context(certs[0], keys[0], ocsps[0], http2, ktls, err, errlen);
    if (first == NULL) return NULL;
    nt_tls_ticket_ring *ring = nt_tls_rotate_tickets(first, ticket_lifetime);
    if (ring == NULL) {
        snprintf(err, errlen, "cannot make session-ticket keys");
        SSL_CTX_free(first);
        return NULL;
    }
    if (!nt_tls_load_ticket_keys(ring, ticket_files, ticket_file_count, err, errlen)) {
        SSL_CTX_free(first);
        return NULL;
    }
    if (count == 1) return first;
    nt_tls_sni_set *set = calloc(1, sizeof(nt_tls_sni_set) + sizeof(SSL_CTX *) * (size_t)(count - 1));
    if (set == NULL) {
        snprintf(err, errlen, "out of memory");
        SSL_CTX_free(first);
        return NULL;
    }
    for (int i = 1; i < count; i++) {
        SSL_CTX *other = nt_tls_server_context(certs[i], keys[i], ocsps[i], http2, ktls, err, errlen);
        if (other == NULL) {
            nt_tls_sni_release(set);
            SSL_CTX_free(first);
            return NULL;
        }
        SSL_CTX_set_ex_data(other, nt_tls_ring_borrowed(), ring);
        set->contexts[set->count++] = other;
    }
    SSL_CTX_set_ex_data(first, index, set);
    SSL_CTX_set_tlsext_servername_callback(first, nt_tls_servername);
    return first;
}

/// A connection's TLS state over its socket (OpenSSL's socket BIO), as the server side.
static inline SSL *nt_tls_new(SSL_CTX *ctx, int fd) {
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

/// What a read or write that did not move bytes means.
enum {
    NT_TLS_WANT_READ = -1,
    NT_TLS_WANT_WRITE = -2,
    NT_TLS_FAILED = -3,
};

static inline int nt_tls_outcome(SSL *ssl, int r) {
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ: return NT_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return NT_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == EAGAIN || errno == EINTR) return NT_TLS_WANT_READ;
        return NT_TLS_FAILED;
    default: return NT_TLS_FAILED;
    }
}

/// Decrypted bytes read (> 0, the handshake first if it is not done), 0 when the peer has
/// closed, or one of the NT_TLS_ values.
static inline int nt_tls_read(SSL *ssl, void *buf, int len) {
    ERR_clear_error();
    int r = SSL_read(ssl, buf, len);
    return r > 0 ? r : nt_tls_outcome(ssl, r);
}

/// Plain bytes taken (> 0: encrypted and sent, or queued in OpenSSL's record), or one of the
/// NT_TLS_ values. After a want, the same bytes must be offered again.
static inline int nt_tls_write(SSL *ssl, const void *buf, int len) {
    ERR_clear_error();
    int r = SSL_write(ssl, buf, len);
    return r > 0 ? r : nt_tls_outcome(ssl, r);
}

/// Sends close_notify once the handshake is done and it was not sent yet (not waiting for
/// the peer's: HTTP knows where its messages end).
static inline void nt_tls_notify_close(SSL *ssl) {
    if (SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        (void)SSL_shutdown(ssl);
        ERR_clear_error();
    }
}

/// close_notify (see above), then the connection's TLS state is freed.
static inline void nt_tls_close(SSL *ssl) {
    nt_tls_notify_close(ssl);
    SSL_free(ssl);
}

/// The negotiated protocol version ("TLSv1.3") and cipher, for logs and tests.
static inline const char *nt_tls_version(SSL *ssl) { return SSL_get_version(ssl); }
static inline const char *nt_tls_cipher(SSL *ssl) { return SSL_get_cipher_name(ssl); }

/// Whether bytes read from the socket wait inside OpenSSL (a record read ahead, or decrypted
/// bytes not yet returned): epoll will not say so.
static inline int nt_tls_pending(SSL *ssl) { return SSL_has_pending(ssl); }

// MARK: For the fuzz target (needletail-fuzz tls) and the tests: a client, and a throwaway
// self-signed identity.

/// A client context that trusts any certificate (only ever talks to this process's server).
static inline SSL_CTX *nt_tls_test_client_context(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

/// A client connection over `fd`.
static inline SSL *nt_tls_test_client(SSL_CTX *ctx, int fd) {
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

/// One step of a handshake: 1 done, 0 wants more, -1 failed.
static inline int nt_tls_test_handshake(SSL *ssl) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1) return 1;
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

static inline int nt_tls_handshake_done(SSL *ssl) { return SSL_is_init_finished(ssl); }

/// Writes a P-256 key and a self-signed certificate for "localhost" (one day) as PEM. 1 on success.
static inline int nt_tls_test_identity(const char *cert_path, const char *key_path) {
    int ok = 0;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    FILE *cf = NULL, *kf = NULL;
    if (key == NULL || cert == NULL) goto done;
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    if (X509_sign(cert, key, EVP_sha256()) == 0) goto done;
    cf = fopen(cert_path, "w");
    kf = fopen(key_path, "w");
    if (cf == NULL || kf == NULL) goto done;
    ok = PEM_write_X509(cf, cert) == 1 && PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) == 1;
done:
    if (cf) fclose(cf);
    if (kf) fclose(kf);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

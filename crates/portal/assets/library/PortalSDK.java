// M-Pesa OpenAPI portal library for Java 11+, from Mkoba's developer portal.
//
// One file, the JDK only: put it beside your code, import its classes and compile them
// together:
//
//   import portalsdk.PortalSDK.*;
//   ...
//   javac -d classes PortalSDK.java Main.java && java -cp classes Main
//
// It follows the portal's "API structure": a context (API key and public key, SSL, method
// type, resource URL), the request parameters, then the response.
//
//   APIContext context = new APIContext();
//   context.setApiKey(API_KEY);
//   context.setPublicKey(PUBLIC_KEY);
//   context.setSsl(false);
//   context.setMethodType(APIMethodType.GET);
//   context.setAddress("127.0.0.1");
//   context.setPort(8080);
//   context.setPath("/sandbox/ipg/v2/vodacomTZN/getSession/");
//   context.addHeader("Origin", "*");
//   APIResponse response = new APIRequest(context).execute();
//   System.out.println(response.getStatusCode() + " " + response.getBody());
//   // v2: every later call carries the session id instead of the API key.
//   context.setApiKey(response.getBody().get("output_SessionID"));
//
// The bearer is the API key (or session id) encrypted under the public key with
// RSAES-PKCS1-v1_5 ("RSA/ECB/PKCS1Padding"), then base64 (`APIRequest.createBearerToken`).
// A call may take `setTimeout` in all (90 s unless set: the gateway answers a payment the
// customer never approves with 408 INS-9 after about a minute). A `GET` sends the
// parameters as its query string, `POST` and `PUT` as a JSON object; a context keeps its
// parameters from call to call (`clearParameters` empties them). Anything that stops a
// call before an answer (an unreadable key, no connection, the timeout) throws
// `APIException`; an answer is returned whatever its status.

package portalsdk;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.crypto.Cipher;

/** The library: its classes, its version, and the error its calls throw. */
public final class PortalSDK {
    public static final String VERSION = "1.1.0";

    private PortalSDK() {}

    /** Why a call could not be made: an unreadable key, no connection, the timeout. */
    public static final class APIException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public APIException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    public enum APIMethodType {
        GET,
        POST,
        PUT,
        DELETE
    }

    /** Where and how a call goes: keys, SSL, method, address, port, path, headers, parameters. */
    public static final class APIContext {
        private String apiKey = "";
        private String publicKey = "";
        private boolean ssl = false;
        private APIMethodType methodType = APIMethodType.GET;
        private String address = "";
        private int port = 80;
        private String path = "";
        private Duration timeout = Duration.ofSeconds(90);
        private final Map<String, String> headers = new LinkedHashMap<>();
        private final Map<String, Object> parameters = new LinkedHashMap<>();

        public String getApiKey() { return apiKey; }
        public void setApiKey(String apiKey) { this.apiKey = apiKey; }
        public String getPublicKey() { return publicKey; }
        public void setPublicKey(String publicKey) { this.publicKey = publicKey; }
        public boolean isSsl() { return ssl; }
        public void setSsl(boolean ssl) { this.ssl = ssl; }
        public APIMethodType getMethodType() { return methodType; }
        public void setMethodType(APIMethodType methodType) { this.methodType = methodType; }
        public String getAddress() { return address; }
        public void setAddress(String address) { this.address = address; }
        public int getPort() { return port; }
        public void setPort(int port) { this.port = port; }
        public String getPath() { return path; }
        public void setPath(String path) { this.path = path; }
        /** How long a call may take in all, from connecting to the answer's last byte. */
        public Duration getTimeout() { return timeout; }
        public void setTimeout(Duration timeout) { this.timeout = timeout; }

        public String getUrl() {
            return (ssl ? "https" : "http") + "://" + address + ":" + port + path;
        }

        public void addHeader(String header, String value) { headers.put(header, value); }
        public Map<String, String> getHeaders() { return headers; }
        /** A request parameter: a string, or a number or boolean sent as it is. */
        public void addParameter(String key, Object value) { parameters.put(key, value); }
        public Map<String, Object> getParameters() { return parameters; }
        public void clearParameters() { parameters.clear(); }
    }

    /** The answer: its status code, its headers, and its body's fields (its text too). */
    public static final class APIResponse {
        private final int statusCode;
        private final Map<String, List<String>> headers;
        private final String text;
        private final Map<String, String> body;

        APIResponse(int statusCode, Map<String, List<String>> headers, String text) {
            this.statusCode = statusCode;
            this.headers = headers;
            this.text = text;
            this.body = Collections.unmodifiableMap(Json.fields(text));
        }

        public int getStatusCode() { return statusCode; }
        public Map<String, List<String>> getHeaders() { return headers; }
        /** The body's fields (an M-Pesa answer is one JSON object of plain values), as text;
         * empty when the body is not such an object (see {@link #getBodyText}). */
        public Map<String, String> getBody() { return body; }
        /** The body as it came. */
        public String getBodyText() { return text; }

        @Override
        public String toString() { return statusCode + " " + text; }
    }

    public static final class APIRequest {
        static {
            // A `Host` header (v1x: which gateway, sandbox or live, a call is for) is one the
            // JDK's client refuses unless allowed before its first use; allowed here unless
            // the program said otherwise.
            if (System.getProperty("jdk.httpclient.allowRestrictedHeaders") == null) {
                System.setProperty("jdk.httpclient.allowRestrictedHeaders", "host");
            }
        }

        private static final HttpClient CLIENT = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10))
                .build();

        private final APIContext context;

        public APIRequest(APIContext context) {
            this.context = context;
        }

        /** The API key (or session id) encrypted under the public key, base64. */
        public String createBearerToken() {
            String apiKey = context.getApiKey();
            if (apiKey == null || apiKey.isEmpty()) {
                throw new APIException("no API key (or session id) in the context", null);
            }
            if (!StandardCharsets.US_ASCII.newEncoder().canEncode(apiKey)) {
                throw new APIException("the API key (or session id) is not ASCII: copy it from the portal as it is", null);
            }
            RSAPublicKey key;
            try {
                String text = String.valueOf(context.getPublicKey())
                        .replaceAll("-----[^-]+-----", "")
                        .replaceAll("\\s", "");
                byte[] der = Base64.getDecoder().decode(text);
                key = (RSAPublicKey) KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(der));
            } catch (GeneralSecurityException | IllegalArgumentException | ClassCastException e) {
                throw new APIException("the public key is not a base64 RSA public key: " + e.getMessage(), e);
            }
            byte[] plain = apiKey.getBytes(StandardCharsets.US_ASCII);
            if (plain.length > (key.getModulus().bitLength() + 7) / 8 - 11) {
                throw new APIException("the API key is too long for the public key", null);
            }
            try {
                Cipher cipher = Cipher.getInstance("RSA/ECB/PKCS1Padding");
                cipher.init(Cipher.ENCRYPT_MODE, key);
                return Base64.getEncoder().encodeToString(cipher.doFinal(plain));
            } catch (GeneralSecurityException e) {
                throw new APIException("encrypting the API key failed: " + e.getMessage(), e);
            }
        }

        public void createDefaultHeaders() {
            context.addHeader("Authorization", "Bearer " + createBearerToken());
            context.addHeader("Content-Type", "application/json");
        }

        /** Sends the call and returns its answer, whatever its status. */
        public APIResponse execute() {
            if (context == null) {
                throw new IllegalArgumentException("Context cannot be null.");
            }
            createDefaultHeaders();
            String url = context.getUrl();
            HttpRequest.BodyPublisher body = HttpRequest.BodyPublishers.noBody();
            if (context.getMethodType() == APIMethodType.GET) {
                StringBuilder query = new StringBuilder();
                for (Map.Entry<String, Object> p : context.getParameters().entrySet()) {
                    query.append(query.length() == 0 ? "" : "&")
                            .append(URLEncoder.encode(p.getKey(), StandardCharsets.UTF_8))
                            .append('=')
                            .append(URLEncoder.encode(String.valueOf(p.getValue()), StandardCharsets.UTF_8));
                }
                if (query.length() > 0) {
                    url += (url.contains("?") ? "&" : "?") + query;
                }
            } else {
                body = HttpRequest.BodyPublishers.ofString(Json.object(context.getParameters()));
            }
            HttpRequest.Builder request;
            try {
                request = HttpRequest.newBuilder(URI.create(url))
                        .timeout(context.getTimeout())
                        .method(context.getMethodType().name(), body);
                for (Map.Entry<String, String> h : context.getHeaders().entrySet()) {
                    request.header(h.getKey(), h.getValue());
                }
            } catch (IllegalArgumentException e) {
                throw new APIException("the call to " + url + " cannot be made: " + e.getMessage(), e);
            }
            Duration limit = context.getTimeout();
            try {
                // The whole call within the timeout: the request's own covers only the wait
                // for the answer's head, not a body that stops coming.
                HttpResponse<String> answer = CLIENT
                        .sendAsync(request.build(), HttpResponse.BodyHandlers.ofString())
                        .get(limit.toMillis(), TimeUnit.MILLISECONDS);
                return new APIResponse(answer.statusCode(), answer.headers().map(), answer.body());
            } catch (TimeoutException e) {
                throw new APIException("the call to " + url + " took longer than " + limit.toSeconds() + " s", e);
            } catch (ExecutionException e) {
                Throwable cause = e.getCause() == null ? e : e.getCause();
                throw new APIException("the call to " + url + " failed: " + describe(cause), cause);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new APIException("the call to " + url + " was interrupted", e);
            }
        }

        /** An I/O failure in words: its kind and its message, and those of its cause. */
        private static String describe(Throwable e) {
            StringBuilder out = new StringBuilder();
            for (Throwable t = e; t != null && out.length() < 300; t = t.getCause()) {
                if (out.length() > 0) {
                    out.append(": ");
                }
                out.append(t.getClass().getSimpleName());
                if (t.getMessage() != null) {
                    out.append(" (").append(t.getMessage()).append(')');
                }
                if (t instanceof java.net.ConnectException && t.getMessage() == null) {
                    out.append(" (connection refused or unreachable: is the server running there?)");
                }
            }
            return out.toString();
        }
    }

    /** Just the JSON M-Pesa speaks: one object of plain values, written and read. */
    static final class Json {
        private Json() {}

        static String object(Map<String, Object> values) {
            StringBuilder out = new StringBuilder("{");
            for (Map.Entry<String, Object> v : values.entrySet()) {
                if (out.length() > 1) {
                    out.append(',');
                }
                string(out, v.getKey());
                out.append(':');
                Object value = v.getValue();
                if (value instanceof Number || value instanceof Boolean) {
                    out.append(value);
                } else if (value == null) {
                    out.append("null");
                } else {
                    string(out, value.toString());
                }
            }
            return out.append('}').toString();
        }

        private static void string(StringBuilder out, String s) {
            out.append('"');
            for (char c : s.toCharArray()) {
                switch (c) {
                    case '"': out.append("\\\""); break;
                    case '\\': out.append("\\\\"); break;
                    case '\n': out.append("\\n"); break;
                    case '\r': out.append("\\r"); break;
                    case '\t': out.append("\\t"); break;
                    default:
                        if (c < 0x20) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                }
            }
            out.append('"');
        }

        /** The members of a flat JSON object, values as text; empty when the text is not one. */
        static Map<String, String> fields(String text) {
            Map<String, String> fields = new LinkedHashMap<>();
            Reader r = new Reader(text == null ? "" : text);
            try {
                r.skip();
                r.expect('{');
                r.skip();
                if (r.peek() == '}') {
                    return fields;
                }
                while (true) {
                    r.skip();
                    String key = r.string();
                    r.skip();
                    r.expect(':');
                    r.skip();
                    fields.put(key, r.value());
                    r.skip();
                    if (r.peek() == ',') {
                        r.at++;
                        continue;
                    }
                    r.expect('}');
                    return fields;
                }
            } catch (IllegalStateException | IndexOutOfBoundsException e) {
                return new LinkedHashMap<>();
            }
        }

        private static final class Reader {
            final String s;
            int at;

            Reader(String s) { this.s = s; }

            char peek() { return s.charAt(at); }

            void skip() {
                while (at < s.length() && Character.isWhitespace(s.charAt(at))) {
                    at++;
                }
            }

            void expect(char c) {
                if (s.charAt(at++) != c) {
                    throw new IllegalStateException("expected " + c);
                }
            }

            String string() {
                expect('"');
                StringBuilder out = new StringBuilder();
                while (true) {
                    char c = s.charAt(at++);
                    if (c == '"') {
                        return out.toString();
                    }
                    if (c != '\\') {
                        out.append(c);
                        continue;
                    }
                    char e = s.charAt(at++);
                    switch (e) {
                        case 'n': out.append('\n'); break;
                        case 'r': out.append('\r'); break;
                        case 't': out.append('\t'); break;
                        case 'b': out.append('\b'); break;
                        case 'f': out.append('\f'); break;
                        case 'u': out.append((char) Integer.parseInt(s.substring(at, at + 4), 16)); at += 4; break;
                        default: out.append(e);
                    }
                }
            }

            /** A string, number, boolean or null, as text (null for null). */
            String value() {
                if (peek() == '"') {
                    return string();
                }
                int start = at;
                while (at < s.length() && ",}] \t\r\n".indexOf(s.charAt(at)) < 0) {
                    if ("{[".indexOf(s.charAt(at)) >= 0) {
                        throw new IllegalStateException("nested values are not read");
                    }
                    at++;
                }
                String word = s.substring(start, at);
                if (word.isEmpty()) {
                    throw new IllegalStateException("a value was expected");
                }
                return word.equals("null") ? null : word;
            }
        }
    }
}

"""M-Pesa OpenAPI portal library for Python 3.8+, from Mkoba's developer portal.

One file, the standard library only: drop it beside your code and
``from portalsdk import APIContext, APIMethodType, APIRequest``. It follows the
portal's "API structure": a context (API key and public key, SSL, method type,
resource URL), the request parameters, then the response.

    context = APIContext(api_key=API_KEY, public_key=PUBLIC_KEY, ssl=False,
                         method_type=APIMethodType.GET, address='127.0.0.1',
                         port=8080, path='/sandbox/ipg/v2/vodacomTZN/getSession/')
    context.add_header('Origin', '*')
    response = APIRequest(context).execute()
    print(response.status_code, response.body)

    # v2: every later call carries the session id instead of the API key.
    context.api_key = response.body['output_SessionID']

The bearer is the API key (or session id) encrypted under the public key with
RSAES-PKCS1-v1_5, then base64 (``APIRequest.create_bearer_token``). A ``GET`` sends
the parameters as its query string, ``POST`` and ``PUT`` as a JSON object; a
context keeps its parameters from call to call (``clear_parameters`` empties
them). ``timeout`` (90 s unless given) bounds connecting and each read of the
answer: the gateway answers a payment the customer never approves with 408 INS-9
after about a minute. Anything that stops a call before an answer (an unreadable
key, no connection, the timeout) raises ``PortalSDKError``; an answer is returned
whatever its status.
"""

import base64
import enum
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request

__all__ = ['APIContext', 'APIMethodType', 'APIRequest', 'APIResponse', 'PortalSDKError']


class PortalSDKError(Exception):
    """A key that cannot be read, or a call that could not be made."""


class APIMethodType(enum.Enum):
    GET = 0
    POST = 1
    PUT = 3
    DELETE = 4


class APIContext:
    """Where and how a call goes: keys, SSL, method, address, port, path, headers
    and parameters. Each context has its own headers and parameters."""

    def __init__(self, api_key='', public_key='', ssl=False,
                 method_type=APIMethodType.GET, address='', port=80, path='',
                 headers=None, parameters=None, timeout=90):
        self.api_key = api_key
        self.public_key = public_key
        self.ssl = ssl
        self.method_type = method_type
        self.address = address
        self.port = port
        self.path = path
        self.headers = dict(headers or {})
        self.parameters = dict(parameters or {})
        self.timeout = timeout

    def get_url(self):
        scheme = 'https' if self.ssl else 'http'
        return '{}://{}:{}{}'.format(scheme, self.address, self.port, self.path)

    def add_header(self, header, value):
        self.headers[header] = value

    def get_headers(self):
        return self.headers

    def add_parameter(self, key, value):
        self.parameters[key] = value

    def get_parameters(self):
        return self.parameters

    def clear_parameters(self):
        self.parameters.clear()


class APIResponse:
    """The answer: its status code, its headers and its body (the JSON object,
    or the text when it is not JSON)."""

    def __init__(self, status_code, headers, body):
        self.status_code = status_code
        self.headers = headers
        self.body = body

    def __repr__(self):
        return 'APIResponse(status_code={!r}, body={!r})'.format(self.status_code, self.body)


class APIRequest:
    def __init__(self, context=None):
        self.context = context

    def create_bearer_token(self):
        """The API key (or session id) encrypted under the public key: base64 of its
        RSAES-PKCS1-v1_5 ciphertext, as bytes."""
        api_key = self.context.api_key
        if not isinstance(api_key, str) or not api_key:
            raise PortalSDKError('no API key (or session id) in the context')
        try:
            message = api_key.encode('ascii')
        except UnicodeEncodeError:
            raise PortalSDKError('the API key (or session id) is not ASCII: copy it from the portal as it is') from None
        modulus, exponent = _rsa_public_key(self.context.public_key)
        size = (modulus.bit_length() + 7) // 8
        if len(message) > size - 11:
            raise PortalSDKError('the API key is too long for the public key')
        padding = bytearray()
        while len(padding) < size - 3 - len(message):
            padding.extend(b for b in secrets.token_bytes(64) if b != 0)
        block = b'\x00\x02' + bytes(padding[:size - 3 - len(message)]) + b'\x00' + message
        cipher = pow(int.from_bytes(block, 'big'), exponent, modulus)
        return base64.b64encode(cipher.to_bytes(size, 'big'))

    def create_default_headers(self):
        self.context.add_header('Authorization',
                                'Bearer ' + self.create_bearer_token().decode('ascii'))
        self.context.add_header('Content-Type', 'application/json')

    def execute(self):
        """Sends the call and returns its APIResponse, whatever its status."""
        if self.context is None:
            raise TypeError('Context cannot be None.')
        method = self.context.method_type
        if not isinstance(method, APIMethodType):
            raise TypeError('method_type must be an APIMethodType')
        self.create_default_headers()
        url = self.context.get_url()
        data = None
        if method is APIMethodType.GET:
            query = urllib.parse.urlencode(
                {k: _text(v) for k, v in self.context.get_parameters().items()})
            if query:
                url += ('&' if '?' in url else '?') + query
        else:
            data = json.dumps(self.context.get_parameters()).encode('utf-8')
        request = urllib.request.Request(url, data=data, method=method.name,
                                         headers=self.context.get_headers())
        try:
            with urllib.request.urlopen(request, timeout=self.context.timeout) as answer:
                return _response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as refused:
            try:
                return _response(refused.code, refused.headers, refused.read())
            except OSError as e:
                raise PortalSDKError('the call to {} failed: {}'.format(url, e)) from e
        except (urllib.error.URLError, OSError) as e:
            raise PortalSDKError('the call to {} failed: {}'.format(url, e)) from e


def _text(value):
    """A parameter as a query string has it: booleans and null as JSON writes them."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return 'null' if value is None else value


def _response(status, headers, raw):
    text = raw.decode('utf-8', 'replace')
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    return APIResponse(status, dict(headers.items()), body)


def _rsa_public_key(public_key):
    """The modulus and exponent of a base64 SubjectPublicKeyInfo (the portal's
    public key), or of a PEM holding one."""
    if not isinstance(public_key, str):
        raise PortalSDKError('the public key is not a base64 RSA public key: none given')
    text = re.sub(r'-----[^-]+-----|\s', '', public_key)
    try:
        der = base64.b64decode(text, validate=False)
        info, _ = _der(der, 0, 0x30)
        algorithm, at = _der(info, 0, 0x30)
        if b'\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01' not in algorithm:
            raise ValueError('not an RSA key')
        bits, _ = _der(info, at, 0x03)
        key, _ = _der(bits[1:], 0, 0x30)
        modulus, at = _der(key, 0, 0x02)
        exponent, _ = _der(key, at, 0x02)
    except (ValueError, IndexError) as e:
        raise PortalSDKError('the public key is not a base64 RSA public key: {}'.format(e)) from e
    return int.from_bytes(modulus, 'big'), int.from_bytes(exponent, 'big')


def _der(data, at, tag):
    """The value of the DER element with `tag` at `at`, and where the next one starts."""
    if data[at] != tag:
        raise ValueError('unexpected DER tag {:#x}'.format(data[at]))
    length = data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[at:at + count], 'big')
        at += count
    if at + length > len(data):
        raise ValueError('DER element runs past the end')
    return data[at:at + length], at + length

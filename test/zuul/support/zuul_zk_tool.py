"""Small tool of the real-Zuul suite, run with the zuul virtualenv's python.

  rotate-oidc ZUUL_CONF  rotate the OIDC signing keys now, with Zuul's own
                         KeyStorage.rotateOidcSigningKeys(), reaching the key store
                         the way zuul-admin does: ZooKeeper plus [keystore] password.
  dump ZUUL_CONF         print every znode as one JSON line {"path", "data"} (data
                         zlib-decompressed when it is compressed), for the suite's
                         canary scan. Output goes to stdout only.
"""
import configparser
import json
import logging
import sys
import zlib

from zuul.lib.keystorage import KeyStorage
from zuul.zk import ZooKeeperClient


def connect(conf_path):
    config = configparser.ConfigParser()
    config.read(conf_path)
    client = ZooKeeperClient.fromConfig(config)
    client.connect()
    return config, client


def rotate(conf_path):
    config, client = connect(conf_path)
    try:
        keystore = KeyStorage(client, password=config['keystore']['password'])
        # rotation_interval 0: the newest key is always due, so a new version is
        # added now; max_ttl as Zuul's default tenant max-oidc-ttl keeps the old key.
        keystore.rotateOidcSigningKeys('RS256', 0, 10800)
    finally:
        client.disconnect()


def text_of(data):
    if not data:
        return ''
    try:
        data = zlib.decompress(data)
    except zlib.error:
        pass
    return data.decode('utf-8', errors='replace')


def dump(conf_path):
    _, client = connect(conf_path)
    kazoo = client.client
    try:
        stack = ['/']
        while stack:
            path = stack.pop()
            try:
                data, _ = kazoo.get(path)
                children = kazoo.get_children(path)
            except Exception:
                continue  # removed while we walked
            sys.stdout.write(json.dumps({'path': path, 'data': text_of(data)}) + '\n')
            for child in children:
                stack.append(path.rstrip('/') + '/' + child)
    finally:
        client.disconnect()


if __name__ == '__main__':
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    command, conf = sys.argv[1], sys.argv[2]
    {'rotate-oidc': rotate, 'dump': dump}[command](conf)

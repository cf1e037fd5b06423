/*
 * Starts Apache Iceberg's REST catalog fixture (the code apache/iceberg-rest-fixture
 * runs) on a chosen address. RESTCatalogServer.main always binds 0.0.0.0 and sets
 * SO_REUSEPORT, which would expose the catalog to the network and let a second
 * server share the port silently; this launcher wires the same adapter and servlet
 * onto a connector bound to REST_HOST (default 127.0.0.1) without port reuse.
 * Configuration is unchanged: CATALOG_* variables, REST_PORT.
 *
 * Every loadTable re-read the table's metadata.json from S3 (about 4 of the 6 ms a
 * load took, paid by every query of every engine). Metadata files are immutable and
 * named uniquely, so the catalog's FileIO is wrapped in MetadataCache, which keeps
 * them by location (bounded, least recently used first out); the current location
 * still comes from the catalog database on every load, so no reader sees stale data.
 */
package org.apache.iceberg.rest;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.inmemory.InMemoryInputFile;
import org.apache.iceberg.io.DelegateFileIO;
import org.apache.iceberg.io.FileInfo;
import org.apache.iceberg.io.InputFile;
import org.apache.iceberg.io.OutputFile;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.relocated.com.google.common.collect.Maps;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public final class LakehouseCatalogServer {
  private LakehouseCatalogServer() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> config = Maps.newHashMap(RCKUtils.environmentCatalogConfig());
    config.putIfAbsent(CatalogProperties_CATALOG_IMPL, JdbcCatalog.class.getName());
    config.putIfAbsent("jdbc.schema-version", "V1");
    config.put(MetadataCache.DELEGATE, config.getOrDefault("io-impl", "org.apache.iceberg.aws.s3.S3FileIO"));
    config.put("io-impl", MetadataCache.class.getName());
    String name = config.getOrDefault("catalog.name", "rest_backend");
    Catalog catalog = CatalogUtil.buildIcebergCatalog(name, config, new Configuration());
    RESTCatalogServer.CatalogContext context = new RESTCatalogServer.CatalogContext(catalog, config);

    ServletContextHandler handler = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    handler.addServlet(new ServletHolder(new RESTCatalogServlet(new RESTServerCatalogAdapter(context))), "/*");
    handler.insertHandler(new GzipHandler());

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(System.getenv().getOrDefault("REST_HOST", "127.0.0.1"));
    connector.setPort(Integer.parseInt(System.getenv().getOrDefault("REST_PORT", "8181")));
    connector.setReuseAddress(true);
    server.addConnector(connector);
    server.setHandler(handler);
    server.setStopAtShutdown(true);
    server.start();
    server.join();
  }

  private static final String CatalogProperties_CATALOG_IMPL = "catalog-impl";

  /** The catalog's FileIO, with *.metadata.json files kept in memory by location. */
  public static final class MetadataCache implements DelegateFileIO {
    static final String DELEGATE = "lakehouse.metadata-cache.delegate-io-impl";
    static final String MAX_BYTES = "lakehouse.metadata-cache.max-bytes";
    private DelegateFileIO delegate;
    private long maxBytes = 64L << 20;
    private long cachedBytes = 0;
    private final LinkedHashMap<String, byte[]> files = new LinkedHashMap<>(64, 0.75f, true);

    @Override
    public void initialize(Map<String, String> properties) {
      maxBytes = Long.parseLong(properties.getOrDefault(MAX_BYTES, String.valueOf(maxBytes)));
      delegate = (DelegateFileIO) CatalogUtil.loadFileIO(properties.get(DELEGATE), properties, new Configuration());
    }

    @Override
    public InputFile newInputFile(String path) {
      if (!path.endsWith(".metadata.json")) {
        return delegate.newInputFile(path);
      }
      byte[] bytes = cached(path);
      if (bytes == null) {
        bytes = read(delegate.newInputFile(path));
        remember(path, bytes);
      }
      return new InMemoryInputFile(path, bytes);
    }

    @Override
    public InputFile newInputFile(String path, long length) {
      return path.endsWith(".metadata.json") ? newInputFile(path) : delegate.newInputFile(path, length);
    }

    private synchronized byte[] cached(String path) {
      return files.get(path);
    }

    private synchronized void remember(String path, byte[] bytes) {
      if (bytes.length > maxBytes || files.containsKey(path)) {
        return;
      }
      files.put(path, bytes);
      cachedBytes += bytes.length;
      var eldest = files.entrySet().iterator();
      while (cachedBytes > maxBytes && eldest.hasNext()) {
        cachedBytes -= eldest.next().getValue().length;
        eldest.remove();
      }
    }

    private synchronized void forget(String path) {
      byte[] bytes = files.remove(path);
      if (bytes != null) {
        cachedBytes -= bytes.length;
      }
    }

    private static byte[] read(InputFile file) {
      try (InputStream in = file.newStream()) {
        return in.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    @Override
    public OutputFile newOutputFile(String path) {
      return delegate.newOutputFile(path);
    }

    @Override
    public void deleteFile(String path) {
      forget(path);
      delegate.deleteFile(path);
    }

    @Override
    public void deleteFiles(Iterable<String> paths) {
      for (String path : paths) {
        forget(path);
      }
      delegate.deleteFiles(paths);
    }

    @Override
    public Iterable<FileInfo> listPrefix(String prefix) {
      return delegate.listPrefix(prefix);
    }

    @Override
    public void deletePrefix(String prefix) {
      synchronized (this) {
        files.keySet().removeIf(path -> path.startsWith(prefix));
        cachedBytes = files.values().stream().mapToLong(b -> b.length).sum();
      }
      delegate.deletePrefix(prefix);
    }

    @Override
    public Map<String, String> properties() {
      return delegate.properties();
    }

    @Override
    public void close() {
      delegate.close();
    }
  }
}

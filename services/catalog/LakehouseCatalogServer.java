/*
 * Starts Apache Iceberg's REST catalog fixture (the code apache/iceberg-rest-fixture
 * runs) on a chosen address. RESTCatalogServer.main always binds 0.0.0.0 and sets
 * SO_REUSEPORT, which would expose the catalog to the network and let a second
 * server share the port silently; this launcher wires the same adapter and servlet
 * onto a connector bound to REST_HOST (default 127.0.0.1) without port reuse.
 * Configuration is unchanged: CATALOG_* variables, REST_PORT.
 */
package org.apache.iceberg.rest;

import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
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
}

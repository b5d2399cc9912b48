build-tsan/obj/src/http/static.o: src/http/static.c src/http/assets.h
src/http/assets.h:
